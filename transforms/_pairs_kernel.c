/* Segment pairs, in C: what transforms/instances.py's
 * create_instances_from_document (BERT's NSP),
 * create_sop_instances_from_document (ALBERT's SOP) and
 * create_segment_pairs_from_document (no sentence task) do for every
 * document pass of a pool (chunks, A's end, the random next segment, the
 * swap, the truncation), drawing from the pool's random.Random exactly as
 * the Python does, and the rows laid out as _to_batch lays them out.
 * Optional: when this module is not built (no C compiler at install),
 * instances.py keeps its Python path; tests/unit/test_instances.py checks
 * that the two give the same instances and counts.
 *
 * pair_rows(state, sentence_lengths, sentence_counts, codes,
 *           max_num_tokens, short_seq_prob, mode, max_single)
 *   -> (rows, truncated_instances, truncated_tokens, same_document,
 *       sop_random_next)
 *
 *   state: random.Random.getstate()[1], the Mersenne Twister's 624 words
 *     and its position (CPython's _randommodule.c: random() takes two
 *     words, a >> 5 and b >> 6; getrandbits(k) fills k bits from 32-bit
 *     words, least significant word first, the last one's low bits
 *     dropped).
 *   sentence_lengths int64 [S]: the tokens of every sentence of the pool's
 *     entries, entry after entry; sentence_counts int64 [D]: the sentences
 *     of each entry (at least one); codes int64 [D]: equal for the entries
 *     of one document.
 *   mode: 0 NSP, 1 SOP, 2 none (a one-sentence chunk is one segment, cut
 *     to max_single tokens).
 *   Returns the rows, int64 [R, 5] as bytes: (start of A, its tokens,
 *   start of B, its tokens or -1 for no B, label), starts counted in the
 *   tokens of the pool's entries back to back; and the counters.
 *
 * fill_batch(flat, rows, cls_id, sep_id, pad_id, separators,
 *            tokens, lengths, a_lengths, labels)
 *   Lays rows (int64 [n, 5] as above) out as _to_batch does:
 *   [CLS] A [SEP]*separators B [SEP] (or [CLS] A [SEP]), padded with pad_id, in tokens int32
 *   [n, L] (L its width), and the lengths (int32), A's lengths (int32) and
 *   labels (uint8). flat: int32, the pool's tokens back to back.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MT_N 624
#define MT_M 397

typedef struct {
  uint32_t mt[MT_N];
  int index;
} MT;

static uint32_t genrand(MT *s) {
  static const uint32_t mag01[2] = {0x0u, 0x9908b0dfu};
  uint32_t y;
  if (s->index >= MT_N) {
    int kk;
    for (kk = 0; kk < MT_N - MT_M; kk++) {
      y = (s->mt[kk] & 0x80000000u) | (s->mt[kk + 1] & 0x7fffffffu);
      s->mt[kk] = s->mt[kk + MT_M] ^ (y >> 1) ^ mag01[y & 0x1u];
    }
    for (; kk < MT_N - 1; kk++) {
      y = (s->mt[kk] & 0x80000000u) | (s->mt[kk + 1] & 0x7fffffffu);
      s->mt[kk] = s->mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 0x1u];
    }
    y = (s->mt[MT_N - 1] & 0x80000000u) | (s->mt[0] & 0x7fffffffu);
    s->mt[MT_N - 1] = s->mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 0x1u];
    s->index = 0;
  }
  y = s->mt[s->index++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= (y >> 18);
  return y;
}

/* random.random() */
static double mt_random(MT *s) {
  uint32_t a = genrand(s) >> 5, b = genrand(s) >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

/* instances._randint: low + int(random() * (high - low + 1)) */
static int64_t randint(MT *s, int64_t low, int64_t high) {
  return low + (int64_t)(mt_random(s) * (double)(high - low + 1));
}

/* instances._coin_flips: the set bits of getrandbits(k), k > 0. */
static int64_t coin_flips(MT *s, int64_t k) {
  if (k <= 32) return __builtin_popcount(genrand(s) >> (32 - k));
  int64_t heads = 0;
  for (; k > 0; k -= 32) {
    uint32_t r = genrand(s);
    if (k < 32) r >>= (32 - k);
    heads += __builtin_popcount(r);
  }
  return heads;
}

/* bisect.bisect_left(a, x, lo, hi) */
static int64_t bisect_left(const int64_t *a, int64_t x, int64_t lo,
                           int64_t hi) {
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (a[mid] < x) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/* instances.truncation_lengths */
static void truncation_lengths(int64_t len_a, int64_t len_b, int64_t max,
                               int64_t *cut_a, int64_t *cut_b) {
  int64_t excess = len_a + len_b - max;
  *cut_a = *cut_b = 0;
  if (excess <= 0) return;
  int64_t gap = len_a > len_b ? len_a - len_b : len_b - len_a;
  if (gap >= excess) {
    if (len_a > len_b) {
      *cut_a = excess;
    } else {
      *cut_b = excess;
    }
    return;
  }
  int64_t rest = excess - gap;
  *cut_a = rest / 2;
  *cut_b = rest - rest / 2;
  if (len_a > len_b) {
    *cut_a += gap;
  } else {
    *cut_b += gap;
  }
}

typedef struct {
  int64_t *data;
  Py_ssize_t size, capacity;
} Rows;

static int push_row(Rows *rows, int64_t a_start, int64_t a_len,
                    int64_t b_start, int64_t b_len, int64_t label) {
  if (rows->size + 5 > rows->capacity) {
    Py_ssize_t capacity = rows->capacity ? 2 * rows->capacity : 1280;
    int64_t *data = PyMem_Realloc(rows->data, sizeof(int64_t) * capacity);
    if (!data) return -1;
    rows->data = data;
    rows->capacity = capacity;
  }
  int64_t *r = rows->data + rows->size;
  r[0] = a_start;
  r[1] = a_len;
  r[2] = b_start;
  r[3] = b_len;
  r[4] = label;
  rows->size += 5;
  return 0;
}

static int read_state(PyObject *state, MT *s) {
  PyObject *fast = PySequence_Fast(state, "state must be a sequence");
  if (!fast) return -1;
  if (PySequence_Fast_GET_SIZE(fast) != MT_N + 1) {
    PyErr_SetString(PyExc_ValueError, "state must hold 625 ints");
    Py_DECREF(fast);
    return -1;
  }
  for (int i = 0; i <= MT_N; i++) {
    unsigned long v = PyLong_AsUnsignedLong(PySequence_Fast_GET_ITEM(fast, i));
    if (v == (unsigned long)-1 && PyErr_Occurred()) {
      Py_DECREF(fast);
      return -1;
    }
    if (v > (i < MT_N ? 0xFFFFFFFFul : (unsigned long)MT_N)) {
      PyErr_SetString(PyExc_ValueError,
                      "a state word above 2**32 or a position above 624");
      Py_DECREF(fast);
      return -1;
    }
    if (i < MT_N) {
      s->mt[i] = (uint32_t)v;
    } else {
      s->index = (int)v;
    }
  }
  Py_DECREF(fast);
  if (s->index < 0 || s->index > MT_N) {
    PyErr_SetString(PyExc_ValueError, "a Mersenne Twister position above 624");
    return -1;
  }
  return 0;
}

enum { MODE_NSP, MODE_SOP, MODE_NONE };

static PyObject *pair_rows(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *state_obj, *lengths_obj, *counts_obj, *codes_obj;
  long long max_num_tokens, max_single;
  double short_seq_prob;
  int mode;
  if (!PyArg_ParseTuple(args, "OOOOLdiL", &state_obj, &lengths_obj,
                        &counts_obj, &codes_obj, &max_num_tokens,
                        &short_seq_prob, &mode, &max_single))
    return NULL;
  if (mode < MODE_NSP || mode > MODE_NONE) {
    PyErr_SetString(PyExc_ValueError, "mode: 0 (NSP), 1 (SOP) or 2 (none)");
    return NULL;
  }
  MT rng;
  if (read_state(state_obj, &rng) < 0) return NULL;
  Py_buffer lv, cv, dv;
  if (PyObject_GetBuffer(lengths_obj, &lv, PyBUF_C_CONTIGUOUS) < 0)
    return NULL;
  if (PyObject_GetBuffer(counts_obj, &cv, PyBUF_C_CONTIGUOUS) < 0) {
    PyBuffer_Release(&lv);
    return NULL;
  }
  if (PyObject_GetBuffer(codes_obj, &dv, PyBUF_C_CONTIGUOUS) < 0) {
    PyBuffer_Release(&lv);
    PyBuffer_Release(&cv);
    return NULL;
  }
  PyObject *result = NULL;
  int64_t *offsets = NULL, *first_offset = NULL, *token_start = NULL;
  Rows rows = {NULL, 0, 0};
  Py_ssize_t S = lv.len / 8, D = cv.len / 8;
  if (lv.itemsize != 8 || cv.itemsize != 8 || dv.itemsize != 8 ||
      dv.len != cv.len) {
    PyErr_SetString(PyExc_TypeError,
                    "int64 sentence lengths, sentence counts and codes, one "
                    "count and one code per entry");
    goto done;
  }
  const int64_t *sentence_lengths = lv.buf, *sentence_counts = cv.buf,
                *codes = dv.buf;
  /* Each entry's sentence offsets (pool_document), one array for all:
   * entry d's are offsets[first_offset[d] ... first_offset[d + 1] - 1]. */
  offsets = PyMem_Malloc(sizeof(int64_t) * (S + D + 1));
  first_offset = PyMem_Malloc(sizeof(int64_t) * (D + 1));
  token_start = PyMem_Malloc(sizeof(int64_t) * (D + 1));
  if (!offsets || !first_offset || !token_start) {
    PyErr_NoMemory();
    goto done;
  }
  Py_ssize_t at = 0, sentence = 0;
  int64_t tokens = 0;
  for (Py_ssize_t d = 0; d < D; d++) {
    if (sentence_counts[d] < 1 || sentence_counts[d] > S - sentence) {
      PyErr_SetString(PyExc_ValueError,
                      "every entry needs a sentence, and the counts must add "
                      "up to the lengths given");
      goto done;
    }
    first_offset[d] = at;
    token_start[d] = tokens;
    int64_t offset = 0;
    offsets[at++] = 0;
    for (int64_t i = 0; i < sentence_counts[d]; i++) {
      offset += sentence_lengths[sentence++];
      offsets[at++] = offset;
    }
    tokens += offset;
  }
  first_offset[D] = at;
  token_start[D] = tokens;
  if (sentence != S) {
    PyErr_SetString(PyExc_ValueError, "the sentence counts do not add up");
    goto done;
  }

  int64_t truncated_instances = 0, truncated_tokens = 0, same_document = 0,
          sop_random_next = 0;
  int failed = 0;
  for (Py_ssize_t d = 0; d < D && !failed; d++) {
    const int64_t *off = offsets + first_offset[d];
    int64_t num_sentences = first_offset[d + 1] - first_offset[d] - 1;
    int64_t base = token_start[d];
    /* target_length */
    int64_t target = max_num_tokens;
    if (mt_random(&rng) < short_seq_prob)
      target = randint(&rng, 2, max_num_tokens);
    int64_t first = 0;
    while (first < num_sentences) {
      int64_t last = bisect_left(off, off[first] + target, first + 1,
                                 num_sentences) - 1;
      int64_t chunk_sentences = last - first + 1;
      int64_t a_end = chunk_sentences >= 2
                          ? randint(&rng, 1, chunk_sentences - 1) : 1;
      int64_t a_start = base + off[first];
      int64_t a_len = off[first + a_end] - off[first];
      int64_t b_start, b_len, label = 0, limit = max_num_tokens;
      int random_next = 0;
      if (mode == MODE_NSP) {
        random_next = last == first || mt_random(&rng) < 0.5;
      } else if (mode == MODE_SOP) {
        random_next = last == first;
        if (random_next) sop_random_next++;
      }
      if (random_next) {
        label = 1;
        int64_t target_b = target - a_len;
        /* _random_other_document */
        Py_ssize_t other = d;
        int found = 0;
        if (D >= 2) {
          for (int t = 0; t < 10; t++) {
            Py_ssize_t o = (Py_ssize_t)randint(&rng, 0, D - 2);
            if (o >= d) o++;
            if (codes[o] != codes[d]) {
              other = o;
              found = 1;
              break;
            }
          }
        }
        if (!found) same_document++;
        /* _random_segment */
        const int64_t *o_off = offsets + first_offset[other];
        int64_t o_count = first_offset[other + 1] - first_offset[other];
        int64_t start = randint(&rng, 0, o_count - 2);
        int64_t end = bisect_left(o_off, o_off[start] + target_b, start + 1,
                                  o_count - 1);
        b_start = token_start[other] + o_off[start];
        b_len = o_off[end] - o_off[start];
        last = first + a_end - 1; /* put_back_b */
      } else if (mode == MODE_NONE && last == first) {
        /* One segment, [CLS] A [SEP]: no B (b_len -1). */
        b_start = 0;
        b_len = -1;
        limit = max_single;
      } else {
        b_start = base + off[first + a_end];
        b_len = off[last + 1] - off[first + a_end];
        if (mode == MODE_SOP && mt_random(&rng) < 0.5) {
          label = 1; /* swapped */
          int64_t t = a_start;
          a_start = b_start;
          b_start = t;
          t = a_len;
          a_len = b_len;
          b_len = t;
        }
      }
      /* truncate_seq_pair */
      int64_t pair_len = b_len < 0 ? 0 : b_len;
      if (a_len + pair_len > limit) {
        int64_t cut_a, cut_b;
        truncation_lengths(a_len, pair_len, limit, &cut_a, &cut_b);
        if (cut_a) {
          int64_t front = coin_flips(&rng, cut_a);
          a_start += front;
          a_len -= cut_a;
        }
        if (cut_b) {
          int64_t front = coin_flips(&rng, cut_b);
          b_start += front;
          b_len -= cut_b;
        }
        if (cut_a + cut_b) {
          truncated_instances++;
          truncated_tokens += cut_a + cut_b;
        }
      }
      if (push_row(&rows, a_start, a_len, b_start, b_len, label) < 0) {
        PyErr_NoMemory();
        failed = 1;
        break;
      }
      first = last + 1;
    }
  }
  if (!failed) {
    PyObject *data = PyBytes_FromStringAndSize(
        (const char *)rows.data, (Py_ssize_t)(sizeof(int64_t) * rows.size));
    if (data) {
      result = Py_BuildValue("(NLLLL)", data, (long long)truncated_instances,
                             (long long)truncated_tokens,
                             (long long)same_document,
                             (long long)sop_random_next);
    }
  }

done:
  PyMem_Free(rows.data);
  PyMem_Free(offsets);
  PyMem_Free(first_offset);
  PyMem_Free(token_start);
  PyBuffer_Release(&lv);
  PyBuffer_Release(&cv);
  PyBuffer_Release(&dv);
  return result;
}

static PyObject *fill_batch(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *objs[6];
  int cls_id, sep_id, pad_id, separators;
  if (!PyArg_ParseTuple(args, "OOiiiiOOOO", &objs[0], &objs[1], &cls_id,
                        &sep_id, &pad_id, &separators, &objs[2], &objs[3],
                        &objs[4], &objs[5]))
    return NULL;
  static const Py_ssize_t sizes[6] = {4, 8, 4, 4, 4, 1};
  Py_buffer v[6];
  int got = 0;
  PyObject *result = NULL;
  for (; got < 6; got++) {
    int flags = PyBUF_C_CONTIGUOUS | (got >= 2 ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(objs[got], &v[got], flags) < 0) goto done;
    if (v[got].itemsize != sizes[got]) {
      PyErr_Format(PyExc_TypeError, "argument %d: items of %zd bytes, not %zd",
                   got, v[got].itemsize, sizes[got]);
      got++;
      goto done;
    }
  }
  Py_ssize_t n = v[1].len / 40;
  if (separators < 0 || separators > 1000) {
    PyErr_SetString(PyExc_ValueError, "separators: 0 to 1000");
    goto done;
  }
  if (v[1].len != 40 * n || v[3].len != 4 * n || v[4].len != 4 * n ||
      v[5].len != n || (n && v[2].len % (4 * n))) {
    PyErr_SetString(PyExc_ValueError, "arrays of other sizes than the rows");
    goto done;
  }
  Py_ssize_t L = n ? v[2].len / 4 / n : 0, flat_size = v[0].len / 4;
  const int32_t *flat = v[0].buf;
  const int64_t *rows = v[1].buf;
  int32_t *tokens = v[2].buf, *lengths = v[3].buf, *a_lengths = v[4].buf;
  uint8_t *labels = v[5].buf;
  for (Py_ssize_t r = 0; r < n; r++) {
    const int64_t *row = rows + 5 * r;
    int64_t a_start = row[0], a_len = row[1], b_start = row[2],
            b_len = row[3];
    int has_b = b_len >= 0;
    int64_t length = has_b ? a_len + 2 + (int64_t)separators + b_len
                           : a_len + 2;
    if (a_start < 0 || a_len < 0 || b_start < 0 ||
        a_start + a_len > flat_size || (has_b && b_start + b_len > flat_size)
        || length > L) {
      PyErr_SetString(PyExc_ValueError, "a row that does not fit");
      goto done;
    }
    int32_t *out = tokens + r * L;
    out[0] = cls_id;
    memcpy(out + 1, flat + a_start, sizeof(int32_t) * a_len);
    Py_ssize_t at = 1 + a_len;
    if (has_b) {
      for (int k = 0; k < separators; k++) out[at++] = sep_id;
      memcpy(out + at, flat + b_start, sizeof(int32_t) * b_len);
      at += b_len;
    }
    out[at++] = sep_id;
    for (; at < L; at++) out[at] = pad_id;
    lengths[r] = (int32_t)length;
    a_lengths[r] = (int32_t)a_len;
    labels[r] = (uint8_t)row[4];
  }
  Py_INCREF(Py_None);
  result = Py_None;

done:
  for (int i = 0; i < got; i++) PyBuffer_Release(&v[i]);
  return result;
}

static PyMethodDef methods[] = {
    {"pair_rows", pair_rows, METH_VARARGS,
     "BERT's, ALBERT's or plain segment pairs of a pool (see the module's "
     "source)."},
    {"fill_batch", fill_batch, METH_VARARGS,
     "Rows laid out as instances._to_batch does (see the module's source)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pairs_kernel",
    "Segment pairs, in C (transforms/instances.py).", -1, methods,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__pairs_kernel(void) { return PyModule_Create(&module); }
