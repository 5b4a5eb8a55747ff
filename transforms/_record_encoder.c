/* The serialized tf.train.Example records of a batch, in C: the byte layout
 * transforms/examples.py's _serialize writes with numpy, written here in
 * one pass per row instead of through a padded byte matrix. Optional: when
 * this module is not built (no C compiler at install), examples.py keeps
 * its numpy path; tests/unit/test_examples.py checks that the two write
 * the same bytes.
 *
 * encode(features, rows, framed) -> (bytes data, bytes ends)
 *
 *   features: a sequence, in the order the records hold them, of
 *     (key: bytes, is_float: bool, values): values a C-contiguous buffer
 *     of rows * k items, k per row: non-negative ints of 1, 2 or 4 bytes
 *     (varint values of an Int64List), or float32 (a FloatList); or
 *     (key, is_float, width, lo, hi, value): width values a row, `value`
 *     at the columns c with lo[row] < c < hi[row] and 0 elsewhere (lo, hi
 *     int32 [rows]; BERT's input_mask, segment_ids, masked_lm_weights).
 *   rows: the number of records.
 *   framed: each record as a TFRecord frame (tf.io.TFRecordWriter's): its
 *     little-endian uint64 length, that length's masked CRC-32C, the
 *     record, the record's masked CRC-32C (crc32c below, checked against
 *     google-crc32c in the tests).
 *
 * Returns the records (or frames) back to back, and where each ends as
 * native int64s.
 *
 * masked_crc32c(data, portable=False) -> int: TFRecord's masked CRC-32C of
 * a bytes-like object, by the CPU's instruction where there is one or by
 * the tables (portable) (exposed for the tests).
 *
 * Wire format (protobuf): Example.features (field 1, length-delimited) ->
 * Features.feature map entries (field 1) -> {key (field 1), Feature (field
 * 2) -> int64_list (field 3) | float_list (field 2) -> packed value (field
 * 1)}.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), eight bytes at a
 * time through eight tables made at import (memcpy of a little-endian
 * word in the SSE 4.2 path below: x86 only). */
static uint32_t crc_table[8][256];

static void make_crc_tables(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    crc_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++) {
    for (int t = 1; t < 8; t++) {
      uint32_t prev = crc_table[t - 1][i];
      crc_table[t][i] = (prev >> 8) ^ crc_table[0][prev & 0xFF];
    }
  }
}

static uint32_t crc32c(const unsigned char *p, Py_ssize_t n) {
  uint32_t c = 0xFFFFFFFFu;
  while (n >= 8) {
    uint32_t lo = ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                   (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24) ^ c;
    uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
                  (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
        crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^
        crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
        crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
  return ~c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The same with SSE 4.2's crc32 instruction, where the CPU has it. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(
    const unsigned char *p, Py_ssize_t n) {
  uint64_t c = 0xFFFFFFFFu;
  while (n >= 8) {
    uint64_t word;
    memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  while (n-- > 0) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}
static int have_sse42 = 0;
#define DETECT_SSE42() (have_sse42 = __builtin_cpu_supports("sse4.2"))
#define CRC32C(p, n) (have_sse42 ? crc32c_sse42(p, n) : crc32c(p, n))
#else
#define DETECT_SSE42() ((void)0)
#define CRC32C(p, n) crc32c(p, n)
#endif

/* TFRecord's mask: rotated right by 15 bits, plus a constant. */
static inline uint32_t masked_crc(const unsigned char *p, Py_ssize_t n) {
  uint32_t c = CRC32C(p, n);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

static inline void put_u32(unsigned char *out, uint32_t v) {
  out[0] = (unsigned char)v;
  out[1] = (unsigned char)(v >> 8);
  out[2] = (unsigned char)(v >> 16);
  out[3] = (unsigned char)(v >> 24);
}

enum { KIND_INTS, KIND_FLOATS, KIND_INTERVAL };

typedef struct {
  const char *key;
  Py_ssize_t key_len;
  int kind;
  int is_float;  /* a FloatList (else an Int64List) */
  Py_ssize_t itemsize;  /* KIND_INTS: 1, 2 or 4 */
  Py_ssize_t per_row;
  const void *values;
  const int32_t *lo, *hi;  /* KIND_INTERVAL */
  uint32_t value;
  Py_buffer view, lo_view, hi_view;
} Feature;

static inline Py_ssize_t varint_size(uint64_t v) {
  Py_ssize_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static inline unsigned char *put_varint(unsigned char *out, uint64_t v) {
  while (v >= 0x80) {
    *out++ = (unsigned char)((v & 0x7F) | 0x80);
    v >>= 7;
  }
  *out++ = (unsigned char)v;
  return out;
}

static inline uint32_t int_at(const Feature *f, Py_ssize_t i) {
  switch (f->itemsize) {
    case 1: return ((const uint8_t *)f->values)[i];
    case 2: return ((const uint16_t *)f->values)[i];
    default: return ((const uint32_t *)f->values)[i];
  }
}

/* KIND_INTERVAL: how many of the row's columns lie strictly between lo
 * and hi. */
static inline Py_ssize_t inside(const Feature *f, Py_ssize_t row) {
  Py_ssize_t from = (Py_ssize_t)f->lo[row] + 1, to = f->hi[row];
  if (from < 0) from = 0;
  if (to > f->per_row) to = f->per_row;
  return to > from ? to - from : 0;
}

/* Bytes of a feature's packed values in one row. */
static inline Py_ssize_t payload_size(const Feature *f, Py_ssize_t row) {
  if (f->is_float) return 4 * f->per_row;
  if (f->kind == KIND_INTERVAL) {
    Py_ssize_t n = inside(f, row);
    return n * varint_size(f->value) + (f->per_row - n);
  }
  Py_ssize_t n = 0, base = row * f->per_row;
  for (Py_ssize_t i = 0; i < f->per_row; i++) {
    uint32_t x = int_at(f, base + i);
    n += x < (1u << 7) ? 1 : x < (1u << 14) ? 2 : x < (1u << 21) ? 3
         : x < (1u << 28) ? 4 : 5;
  }
  return n;
}

/* The sizes around a feature of `payload` bytes: the packed list, the
 * Feature, the map entry, and the map entry with its own tag and length. */
static inline void feature_sizes(const Feature *f, Py_ssize_t payload,
                                 Py_ssize_t *list_len, Py_ssize_t *feature_len,
                                 Py_ssize_t *entry_len, Py_ssize_t *total) {
  *list_len = 1 + varint_size(payload) + payload;
  *feature_len = 1 + varint_size(*list_len) + *list_len;
  *entry_len = 1 + varint_size(f->key_len) + f->key_len + 1 +
               varint_size(*feature_len) + *feature_len;
  *total = 1 + varint_size(*entry_len) + *entry_len;
}

static void release(Feature *features, Py_ssize_t n) {
  for (Py_ssize_t i = 0; i < n; i++) {
    if (features[i].view.obj) PyBuffer_Release(&features[i].view);
    if (features[i].lo_view.obj) PyBuffer_Release(&features[i].lo_view);
    if (features[i].hi_view.obj) PyBuffer_Release(&features[i].hi_view);
  }
  PyMem_Free(features);
}

/* An int32 [rows] buffer of an interval feature. */
static int interval_bound(PyObject *obj, Py_buffer *view, Py_ssize_t rows,
                          Py_ssize_t i) {
  if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
  if (view->itemsize != 4 || view->len != 4 * rows) {
    PyErr_Format(PyExc_ValueError,
                 "feature %zd: interval bounds must be int32, one a row", i);
    return -1;
  }
  return 0;
}

/* Reads features[i] from its tuple: (key, is_float, values) or (key,
 * is_float, width, lo, hi, value). */
static int read_feature(PyObject *item, Feature *f, Py_ssize_t rows,
                        Py_ssize_t i) {
  const char *key;
  Py_ssize_t key_len;
  int is_float;
  if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 6) {
    Py_ssize_t width;
    PyObject *lo, *hi;
    unsigned long value;
    if (!PyArg_ParseTuple(item, "y#pnOOk", &key, &key_len, &is_float, &width,
                          &lo, &hi, &value))
      return -1;
    if (width < 0 || value > 0xFFFFFFFFul) {
      PyErr_Format(PyExc_ValueError, "feature %zd: a bad width or value", i);
      return -1;
    }
    if (interval_bound(lo, &f->lo_view, rows, i) < 0 ||
        interval_bound(hi, &f->hi_view, rows, i) < 0)
      return -1;
    f->kind = KIND_INTERVAL;
    f->per_row = width;
    f->lo = f->lo_view.buf;
    f->hi = f->hi_view.buf;
    f->value = (uint32_t)value;
  } else {
    PyObject *values;
    if (!PyArg_ParseTuple(item, "y#pO", &key, &key_len, &is_float, &values))
      return -1;
    if (PyObject_GetBuffer(values, &f->view,
                           PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
      return -1;
    const char *fmt = f->view.format ? f->view.format : "B";
    if (*fmt == '<' || *fmt == '=') fmt++;
    int ok = fmt[0] && fmt[1] == '\0' &&
             (is_float ? (fmt[0] == 'f' && f->view.itemsize == 4)
                       : (strchr("BbHhIi", fmt[0]) != NULL &&
                          f->view.itemsize <= 4));
    if (!ok) {
      PyErr_Format(PyExc_TypeError,
                   "feature %zd: values must be %s, got format '%s'", i,
                   is_float ? "float32" : "ints of 1, 2 or 4 bytes",
                   f->view.format ? f->view.format : "B");
      return -1;
    }
    Py_ssize_t items = f->view.len / f->view.itemsize;
    if (rows ? items % rows : items) {
      PyErr_Format(PyExc_ValueError,
                   "feature %zd: %zd values do not split into %zd rows", i,
                   items, rows);
      return -1;
    }
    f->kind = is_float ? KIND_FLOATS : KIND_INTS;
    f->itemsize = f->view.itemsize;
    f->per_row = rows ? items / rows : 0;
    f->values = f->view.buf;
  }
  f->key = key;
  f->key_len = key_len;
  f->is_float = is_float;
  return 0;
}

static PyObject *encode(PyObject *self, PyObject *args) {
  PyObject *feature_seq;
  Py_ssize_t rows;
  int framed;
  if (!PyArg_ParseTuple(args, "Onp", &feature_seq, &rows, &framed))
    return NULL;
  if (rows < 0) {
    PyErr_SetString(PyExc_ValueError, "rows must not be negative");
    return NULL;
  }
  PyObject *fast = PySequence_Fast(feature_seq, "features must be a sequence");
  if (!fast) return NULL;
  Py_ssize_t nf = PySequence_Fast_GET_SIZE(fast);
  Feature *features = PyMem_Calloc(nf ? nf : 1, sizeof(Feature));
  if (!features) {
    Py_DECREF(fast);
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < nf; i++) {
    if (read_feature(PySequence_Fast_GET_ITEM(fast, i), &features[i], rows,
                     i) < 0) {
      release(features, nf);
      Py_DECREF(fast);
      return NULL;
    }
  }

  /* Pass 1: each row's payload sizes, and the whole size. */
  Py_ssize_t *payloads = PyMem_Malloc(sizeof(Py_ssize_t) * (nf * rows + 1));
  PyObject *ends = PyBytes_FromStringAndSize(NULL, 8 * rows);
  if (!payloads || !ends) {
    PyMem_Free(payloads);
    Py_XDECREF(ends);
    release(features, nf);
    Py_DECREF(fast);
    return PyErr_NoMemory();
  }
  int64_t *end_at = (int64_t *)PyBytes_AS_STRING(ends);
  Py_ssize_t size = 0;
  Py_BEGIN_ALLOW_THREADS
  for (Py_ssize_t r = 0; r < rows; r++) {
    Py_ssize_t features_len = 0;
    for (Py_ssize_t i = 0; i < nf; i++) {
      Py_ssize_t p = payload_size(&features[i], r), a, b, c, total;
      payloads[r * nf + i] = p;
      feature_sizes(&features[i], p, &a, &b, &c, &total);
      features_len += total;
    }
    size += 1 + varint_size(features_len) + features_len + (framed ? 16 : 0);
    end_at[r] = size;
  }
  Py_END_ALLOW_THREADS

  PyObject *data = PyBytes_FromStringAndSize(NULL, size);
  if (!data) {
    PyMem_Free(payloads);
    Py_DECREF(ends);
    release(features, nf);
    Py_DECREF(fast);
    return NULL;
  }
  unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);

  /* Pass 2: the bytes. */
  Py_BEGIN_ALLOW_THREADS
  for (Py_ssize_t r = 0; r < rows; r++) {
    Py_ssize_t features_len = 0;
    for (Py_ssize_t i = 0; i < nf; i++) {
      Py_ssize_t a, b, c, total;
      feature_sizes(&features[i], payloads[r * nf + i], &a, &b, &c, &total);
      features_len += total;
    }
    Py_ssize_t record_len = 1 + varint_size(features_len) + features_len;
    if (framed) {
      uint64_t length = (uint64_t)record_len;
      for (int k = 0; k < 8; k++) out[k] = (unsigned char)(length >> (8 * k));
      put_u32(out + 8, masked_crc(out, 8));
      out += 12;
    }
    unsigned char *record = out;
    *out++ = 0x0A;
    out = put_varint(out, (uint64_t)features_len);
    for (Py_ssize_t i = 0; i < nf; i++) {
      const Feature *f = &features[i];
      Py_ssize_t p = payloads[r * nf + i], list_len, feature_len, entry_len,
                 total;
      feature_sizes(f, p, &list_len, &feature_len, &entry_len, &total);
      *out++ = 0x0A;  /* the map entry */
      out = put_varint(out, (uint64_t)entry_len);
      *out++ = 0x0A;  /* its key */
      out = put_varint(out, (uint64_t)f->key_len);
      memcpy(out, f->key, f->key_len);
      out += f->key_len;
      *out++ = 0x12;  /* its value, the Feature */
      out = put_varint(out, (uint64_t)feature_len);
      *out++ = f->is_float ? 0x12 : 0x1A;  /* float_list | int64_list */
      out = put_varint(out, (uint64_t)list_len);
      *out++ = 0x0A;  /* the packed values */
      out = put_varint(out, (uint64_t)p);
      if (f->kind == KIND_INTERVAL) {
        int32_t lo = f->lo[r], hi = f->hi[r];
        float one = (float)f->value;
        uint32_t one_bits;
        memcpy(&one_bits, &one, 4);
        for (Py_ssize_t k = 0; k < f->per_row; k++) {
          int in = lo < k && k < hi;
          if (f->is_float) {
            put_u32(out, in ? one_bits : 0);
            out += 4;
          } else if (in) {
            out = put_varint(out, f->value);
          } else {
            *out++ = 0;
          }
        }
      } else if (f->is_float) {
        const float *v = (const float *)f->values + r * f->per_row;
        for (Py_ssize_t k = 0; k < f->per_row; k++) {
          uint32_t bits;
          memcpy(&bits, &v[k], 4);
          put_u32(out, bits);
          out += 4;
        }
      } else {
        Py_ssize_t base = r * f->per_row;
        for (Py_ssize_t k = 0; k < f->per_row; k++) {
          uint32_t x = int_at(f, base + k);
          if (x < 0x80) {
            *out++ = (unsigned char)x;
          } else {
            out = put_varint(out, x);
          }
        }
      }
    }
    if (framed) {
      put_u32(out, masked_crc(record, out - record));
      out += 4;
    }
  }
  Py_END_ALLOW_THREADS

  PyMem_Free(payloads);
  release(features, nf);
  Py_DECREF(fast);
  PyObject *result = PyTuple_Pack(2, data, ends);
  Py_DECREF(data);
  Py_DECREF(ends);
  return result;
}

static PyObject *masked_crc32c(PyObject *self, PyObject *args) {
  Py_buffer view;
  int portable = 0;
  if (!PyArg_ParseTuple(args, "y*|p", &view, &portable)) return NULL;
  const unsigned char *p = (const unsigned char *)view.buf;
  uint32_t c = portable ? crc32c(p, view.len) : CRC32C(p, view.len);
  c = ((c >> 15) | (c << 17)) + 0xA282EAD8u;
  PyBuffer_Release(&view);
  return PyLong_FromUnsignedLong(c);
}

static PyMethodDef methods[] = {
    {"masked_crc32c", masked_crc32c, METH_VARARGS,
     "masked_crc32c(data, portable=False) -> int: TFRecord's masked "
     "CRC-32C (portable: by the tables, not the CPU's instruction)."},
    {"encode", encode, METH_VARARGS,
     "encode(features, rows, framed) -> (bytes, bytes of int64 ends): "
     "serialized tf.train.Example records (see the module's source)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_record_encoder",
                                    "tf.train.Example records of a batch, "
                                    "in C (transforms/examples.py).",
                                    -1, methods};

PyMODINIT_FUNC PyInit__record_encoder(void) {
  make_crc_tables();
  DETECT_SSE42();
  return PyModule_Create(&module);
}
