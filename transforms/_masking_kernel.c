/* BERT's token masking without whole words, in C: what
 * transforms/masking.py's mask_batch does with numpy for --masking=static
 * without --do_whole_word_mask, n-grams or spans (candidates, then
 * choose_tokens, then the 80/10/10 replacement), one row at a time.
 * Optional: when this module is not built (no C compiler at install),
 * masking.py keeps its numpy path; tests/unit/test_masking.py checks that
 * the two give the same arrays and counts.
 *
 * mask_tokens(tokens, lengths, a_lengths, separators, special_ids, keys,
 *             n_pred, u, keep_or_random, random_ids, mask_id,
 *             input_ids, positions, masked_ids, num_predictions)
 *   -> (masked, as_mask, kept, replaced)
 *
 * Inputs (C-contiguous buffers), for n rows of L tokens and P prediction
 * slots:
 *   tokens int32 [n, L]; lengths, a_lengths int32 [n]; separators (int);
 *   special_ids int32 [s] (never masked);
 *   keys uint64 [n, L]: the row's random keys as the generator drew them
 *     (each position's key has its low bits replaced by its column, so
 *     the chosen positions are those of the smallest keys, as in
 *     choose_tokens);
 *   n_pred int64 [n]: predictions asked per row (at most P);
 *   u, keep_or_random float32 [n, P]; random_ids int32 [n, P]: the
 *     80/10/10 draws of each slot;
 *   mask_id (int).
 * Outputs (written in place):
 *   input_ids [n, L] (uint16 or int32, holding the tokens on entry): the
 *     chosen positions replaced;
 *   positions uint16 [n, P]: the chosen positions in ascending order, 0
 *     in the unused slots;
 *   masked_ids [n, P] (the type of input_ids): the original tokens there,
 *     0 in the unused slots;
 *   num_predictions int32 [n].
 * Returns the counts of masked tokens, and of those made [MASK], kept and
 * replaced by a random id.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  Py_buffer view;
  const char *name;
  Py_ssize_t itemsize;
  int writable;
} Arg;

static int get(PyObject *obj, Arg *arg, const char *name, Py_ssize_t itemsize,
               int writable) {
  arg->name = name;
  int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(obj, &arg->view, flags) < 0) return -1;
  if (itemsize && arg->view.itemsize != itemsize) {
    PyErr_Format(PyExc_TypeError, "%s: items of %zd bytes, not %zd", name,
                 arg->view.itemsize, itemsize);
    PyBuffer_Release(&arg->view);
    arg->view.obj = NULL;
    return -1;
  }
  arg->itemsize = arg->view.itemsize;
  return 0;
}

static int check_items(Arg *arg, Py_ssize_t items) {
  if (arg->view.len != items * arg->itemsize) {
    PyErr_Format(PyExc_ValueError, "%s: %zd items, not %zd", arg->name,
                 arg->view.len / arg->itemsize, items);
    return -1;
  }
  return 0;
}

#define NARGS 14

static PyObject *mask_tokens(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *objs[NARGS];
  int separators, mask_id;
  if (!PyArg_ParseTuple(args, "OOOiOOOOOOiOOOO", &objs[0], &objs[1], &objs[2],
                        &separators, &objs[3], &objs[4], &objs[5], &objs[6],
                        &objs[7], &objs[8], &mask_id, &objs[9], &objs[10],
                        &objs[11], &objs[12]))
    return NULL;
  static const char *names[] = {"tokens", "lengths", "a_lengths",
                                "special_ids", "keys", "n_pred", "u",
                                "keep_or_random", "random_ids", "input_ids",
                                "positions", "masked_ids", "num_predictions"};
  static const Py_ssize_t sizes[] = {4, 4, 4, 4, 8, 8, 4, 4, 4, 0, 2, 0, 4};
  static const int writable[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
  Arg a[13];
  memset(a, 0, sizeof(a));
  int got = 0;
  PyObject *result = NULL;
  for (; got < 13; got++) {
    if (get(objs[got], &a[got], names[got], sizes[got], writable[got]) < 0)
      goto done;
  }
  Py_ssize_t n = a[1].view.len / 4;
  if (n == 0) {
    result = Py_BuildValue("(nnnn)", (Py_ssize_t)0, (Py_ssize_t)0,
                           (Py_ssize_t)0, (Py_ssize_t)0);
    goto done;
  }
  Py_ssize_t L = a[0].view.len / 4 / n;
  Py_ssize_t P = a[6].view.len / 4 / n;
  Py_ssize_t id_size = a[9].itemsize;
  if ((id_size != 2 && id_size != 4) || a[11].itemsize != id_size) {
    PyErr_SetString(PyExc_TypeError,
                    "input_ids and masked_ids must both be uint16 or int32");
    goto done;
  }
  if (check_items(&a[0], n * L) < 0 || check_items(&a[2], n) < 0 ||
      check_items(&a[4], n * L) < 0 || check_items(&a[5], n) < 0 ||
      check_items(&a[6], n * P) < 0 || check_items(&a[7], n * P) < 0 ||
      check_items(&a[8], n * P) < 0 || check_items(&a[9], n * L) < 0 ||
      check_items(&a[10], n * P) < 0 || check_items(&a[11], n * P) < 0 ||
      check_items(&a[12], n) < 0)
    goto done;
  if (L < 1 || L > 65535) {
    PyErr_SetString(PyExc_ValueError, "rows of 1 to 65535 tokens");
    goto done;
  }
  const int32_t *tokens = a[0].view.buf, *lengths = a[1].view.buf,
                *a_lengths = a[2].view.buf, *special = a[3].view.buf,
                *random_ids = a[8].view.buf;
  Py_ssize_t n_special = a[3].view.len / 4;
  const uint64_t *keys = a[4].view.buf;
  const int64_t *n_pred = a[5].view.buf;
  const float *u = a[6].view.buf, *keep_or_random = a[7].view.buf;
  uint16_t *positions = a[10].view.buf;
  int32_t *num_predictions = a[12].view.buf;
  char *input_ids = a[9].view.buf, *masked_ids = a[11].view.buf;
  for (Py_ssize_t r = 0; r < n; r++) {
    if (n_pred[r] > P || n_pred[r] < 0) {
      PyErr_SetString(PyExc_ValueError, "n_pred above max_predictions");
      goto done;
    }
  }
  /* (L - 1).bit_length(), at least 1: the low bits that hold the column. */
  int bits = 1;
  while (((Py_ssize_t)1 << bits) <= L - 1) bits++;
  const uint64_t low = ((uint64_t)1 << bits) - 1;
  Py_ssize_t k = P < L ? P : L;
  Py_ssize_t counts[4] = {0, 0, 0, 0};
  Py_ssize_t words = (L + 63) / 64;
  uint64_t *best = PyMem_Malloc(sizeof(uint64_t) * (2 * L + words));
  if (!best) {
    PyErr_NoMemory();
    goto done;
  }
  uint64_t *small = best + L, *bitmap = best + 2 * L;

  Py_BEGIN_ALLOW_THREADS
  for (Py_ssize_t r = 0; r < n; r++) {
    const int32_t *row = tokens + r * L;
    const uint64_t *row_keys = keys + r * L;
    Py_ssize_t want = n_pred[r] < k ? (Py_ssize_t)n_pred[r] : k;
    int32_t length = lengths[r], after_a = a_lengths[r];
    /* The candidates' keys (distinct: their low bits are the column);
     * the columns of the `want` smallest of them are the chosen ones. */
    Py_ssize_t m = 0;
    for (Py_ssize_t c = 1; c < L && c < (Py_ssize_t)length - 1; c++) {
      if (c > after_a && c <= (Py_ssize_t)after_a + separators) continue;
      int is_special = 0;
      for (Py_ssize_t s = 0; s < n_special; s++) {
        if (row[c] == special[s]) {
          is_special = 1;
          break;
        }
      }
      if (!is_special) best[m++] = (row_keys[c] & ~low) | (uint64_t)c;
    }
    Py_ssize_t have = want < m ? want : m;
    uint64_t *pick = best;
    Py_ssize_t size = m;
    if (have > 0 && have < m) {
      /* The keys are uniform: about 1.5 * have of them lie below this
       * threshold. When at least `have` do, the smallest are among them:
       * they are copied out (without a branch) and chosen from alone;
       * otherwise from all. */
      double share = 1.5 * (double)have / (double)m + 2.0 / (double)m;
      if (share < 1.0) {
        uint64_t limit = (uint64_t)(share * 18446744073709551615.0);
        Py_ssize_t below = 0;
        for (Py_ssize_t i = 0; i < m; i++) {
          small[below] = best[i];
          below += best[i] < limit;
        }
        if (below >= have) {
          pick = small;
          size = below;
        }
      }
    }
    /* The chosen columns, marked in a bitmap of the row and read back in
     * ascending order. Among few keys, a key is chosen when fewer than
     * `have` are smaller (its rank, without a branch); among many (too few
     * below the threshold), by an insertion sort stopped at the `have`
     * smallest. */
    memset(bitmap, 0, sizeof(uint64_t) * words);
    if (have == 0) {
      /* nothing chosen (no candidate, or no prediction asked) */
    } else if (have == size) {
      for (Py_ssize_t i = 0; i < size; i++) {
        uint64_t col = pick[i] & low;
        bitmap[col >> 6] |= (uint64_t)1 << (col & 63);
      }
    } else if (size <= 64) {
      for (Py_ssize_t i = 0; i < size; i++) {
        Py_ssize_t rank = 0;
        for (Py_ssize_t j = 0; j < size; j++) rank += pick[j] < pick[i];
        if (rank < have) {
          uint64_t col = pick[i] & low;
          bitmap[col >> 6] |= (uint64_t)1 << (col & 63);
        }
      }
    } else {
      for (Py_ssize_t i = 1; i < size; i++) {
        uint64_t key = pick[i];
        if (i >= have && key >= pick[have - 1]) continue;
        Py_ssize_t at = i < have ? i : have - 1;
        while (at > 0 && pick[at - 1] > key) {
          pick[at] = pick[at - 1];
          at--;
        }
        pick[at] = key;
      }
      for (Py_ssize_t j = 0; j < have; j++) {
        uint64_t col = pick[j] & low;
        bitmap[col >> 6] |= (uint64_t)1 << (col & 63);
      }
    }
    uint16_t *row_positions = positions + r * P;
    Py_ssize_t chosen = 0;
    for (Py_ssize_t w = 0; w < words && chosen < have; w++) {
      uint64_t bits_left = bitmap[w];
      while (bits_left) {
        row_positions[chosen++] = (uint16_t)(w * 64 + __builtin_ctzll(bits_left));
        bits_left &= bits_left - 1;
      }
    }
    for (Py_ssize_t j = have; j < P; j++) row_positions[j] = 0;
    num_predictions[r] = (int32_t)have;
    counts[0] += have;
    /* 80% [MASK], 10% the original, 10% a random id. */
    for (Py_ssize_t j = 0; j < P; j++) {
      Py_ssize_t slot = r * P + j;
      int32_t original = 0, value = 0;
      if (j < have) {
        Py_ssize_t col = row_positions[j];
        original = row[col];
        if (u[slot] < 0.8f) {
          value = mask_id;
          counts[1]++;
        } else if (keep_or_random[slot] < 0.5f) {
          value = original;
          counts[2]++;
        } else {
          value = random_ids[slot];
          counts[3]++;
        }
        if (id_size == 2) {
          ((uint16_t *)input_ids)[r * L + col] = (uint16_t)value;
        } else {
          ((int32_t *)input_ids)[r * L + col] = value;
        }
      }
      if (id_size == 2) {
        ((uint16_t *)masked_ids)[slot] = (uint16_t)original;
      } else {
        ((int32_t *)masked_ids)[slot] = original;
      }
    }
  }
  Py_END_ALLOW_THREADS

  PyMem_Free(best);
  result = Py_BuildValue("(nnnn)", counts[0], counts[1], counts[2], counts[3]);

done:
  for (int i = 0; i < got; i++) PyBuffer_Release(&a[i].view);
  return result;
}

static PyMethodDef methods[] = {
    {"mask_tokens", mask_tokens, METH_VARARGS,
     "BERT's token masking of a batch (see the module's source)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_masking_kernel",
    "BERT's token masking without whole words, in C (transforms/masking.py).",
    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__masking_kernel(void) {
  return PyModule_Create(&module);
}
