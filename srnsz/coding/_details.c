/* srnsz.coding.context's kernels in C. curvature_details: the detail of every target of a pass from its views'
 * cubic and linear spline predictions, one pass over the data instead of numpy's ten; it must give the bytes numpy
 * gives (tests compare them): the same float64 operations in the same order, no contraction into fused
 * multiply-adds. neighbour_sums: the magnitude sums behind the contexts, the uint16 arithmetic of the numpy
 * version it replaced (kept in the tests as their oracle), without its fifteen temporaries; the code magnitudes
 * and the contexts of the sums, one pass each.
 * Loaded with ctypes; the module init below only lets setuptools build it as an extension. */
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define N_DETAILS 16
#define MAX_DIMS 32 /* as context.py's _MAX_DIMS */

/* out[i] = the detail of sum over views v of (cubic[v][i] - linear[v][i]) (NaN where a difference is not finite),
 * divided by ``divisor`` (n_views * bin width): 8 +- the number of edges at or below its magnitude, 15 if NaN. */
static inline uint8_t detail_of(double sum, double divisor) {
    double g = sum / divisor;
    double magnitude = fabs(g);
    int bucket = (magnitude >= 0.125) + (magnitude >= 0.25) + (magnitude >= 0.5) + (magnitude >= 1.0) +
                 (magnitude >= 2.0) + (magnitude >= 4.0);
    int detail = (g > 0) ? 8 + bucket : 8 - bucket;
    int not_a_number = g != g;
    return (uint8_t)(not_a_number ? N_DETAILS - 1 : detail); /* no branch on the data: its signs are random */
}

void srnsz_curvature_details(const double *const *cubic, const double *const *linear, int64_t n_views, int64_t n,
                             double divisor, uint8_t *restrict out) {
    if (n_views == 1) { /* most passes; out (bytes) could alias the pointer arrays without this copy */
        const double *restrict c = cubic[0], *restrict l = linear[0];
        for (int64_t i = 0; i < n; i++) {
            double gap = c[i] - l[i];
            out[i] = detail_of(gap + (gap - gap), divisor); /* NaN where gap is not finite (the sign of a zero
                                                              * may change: its detail is 8 either way) */
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double sum = 0.0;
        for (int64_t v = 0; v < n_views; v++) {
            double gap = cubic[v][i] - linear[v][i];
            sum += isfinite(gap) ? gap : NAN;
        }
        out[i] = detail_of(sum, divisor);
    }
}

/* out (contiguous, ``shape`` with m = shape[axis]) = even[j] + even[min(j + 1, even_len - 1)] along ``axis``, where
 * ``even`` is a strided uint8 view (byte strides ``strides``, ``even_len`` = m or m + 1 points along ``axis``, the
 * shape elsewhere); then, axis by axis (each step sees the previous ones), every other axis of at least 2 points
 * adds half the sum of a point's two neighbours along it (edges repeated), in uint16 arithmetic. Returns 0, or -1
 * for more than MAX_DIMS axes or where the row scratch could not be allocated. */
int srnsz_neighbour_sums(const uint8_t *even, int64_t nd, const int64_t *shape, const int64_t *strides, int64_t axis,
                         int64_t even_len, uint16_t *out) {
    if (nd < 1 || nd > MAX_DIMS) return -1;
    int64_t n = 1;
    for (int64_t k = 0; k < nd; k++) n *= shape[k];
    if (n == 0) return 0;
    int64_t last = nd - 1, idx[MAX_DIMS] = {0};
    int64_t row = shape[last], step = strides[last];
    for (int64_t o = 0; o < n; o += row) {
        const uint8_t *base = even;
        for (int64_t k = 0; k < last; k++) base += idx[k] * strides[k];
        uint16_t *dst = out + o;
        if (axis == last) {
            for (int64_t j = 0; j < row; j++) {
                int64_t r = j + 1 < even_len ? j + 1 : even_len - 1;
                dst[j] = (uint16_t)(base[j * step] + base[r * step]);
            }
        } else {
            int64_t next = idx[axis] + 1 < even_len ? strides[axis] : 0;
            for (int64_t j = 0; j < row; j++) dst[j] = (uint16_t)(base[j * step] + base[j * step + next]);
        }
        for (int64_t k = last - 1; k >= 0; k--) {
            if (++idx[k] < shape[k]) break;
            idx[k] = 0;
        }
    }
    for (int64_t other = 0; other < nd; other++) {
        int64_t len = shape[other];
        if (other == axis || len < 2) continue;
        int64_t inner = 1;
        for (int64_t k = other + 1; k < nd; k++) inner *= shape[k];
        uint16_t *previous = malloc((size_t)inner * sizeof(uint16_t));
        if (previous == NULL) return -1;
        for (int64_t o = 0; o < n; o += len * inner) {
            for (int64_t j = 0; j < len; j++) {
                uint16_t *cur = out + o + j * inner;
                const uint16_t *before = j > 0 ? previous : cur;
                const uint16_t *after = j + 1 < len ? cur + inner : cur;
                for (int64_t i = 0; i < inner; i++) {
                    uint16_t across = (uint16_t)(before[i] + after[i]);
                    uint16_t value = cur[i];
                    previous[i] = value;
                    cur[i] = (uint16_t)(value + (uint16_t)(across >> 1));
                }
            }
        }
        free(previous);
    }
    return 0;
}

/* out[i] = min(|codes[i]|, escape_magnitude - 1), escape_magnitude where codes[i] is ``escape``: the magnitude map. */
void srnsz_code_magnitudes(const int16_t *codes, int64_t n, int16_t escape, uint8_t escape_magnitude, uint8_t *out) {
    for (int64_t i = 0; i < n; i++) {
        int32_t c = codes[i], m = c < 0 ? -c : c;
        out[i] = c == escape ? escape_magnitude : (uint8_t)(m < escape_magnitude - 1 ? m : escape_magnitude - 1);
    }
}

/* out[i] = table[min(sums[i], cap)]: the contexts of neighbour magnitude sums (the table is the caller's). */
void srnsz_sum_contexts(const uint16_t *sums, int64_t n, const uint8_t *table, int64_t cap, uint8_t *out) {
    for (int64_t i = 0; i < n; i++) out[i] = table[sums[i] < cap ? sums[i] : cap];
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_details", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__details(void) { return PyModule_Create(&module); }
