// Parses each .tf file given on the command line with HashiCorp's HCL parser
// (@cdktf/hcl2json, compiled to WebAssembly). Exits 1 and names the file on
// the first parse error. NODE_PATH must hold the installed package.
const fs = require("fs");
const { parse } = require("@cdktf/hcl2json");

async function main(files) {
  let failed = 0;
  for (const file of files) {
    try {
      const json = await parse(file, fs.readFileSync(file, "utf8"));
      console.log(`ok ${file}: ${Object.keys(json).join(", ")}`);
    } catch (err) {
      console.error(`parse error in ${file}: ${err.message || err}`);
      failed += 1;
    }
  }
  process.exit(failed ? 1 : 0);
}

main(process.argv.slice(2));
