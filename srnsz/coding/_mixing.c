/* The inner loop of srnsz.coding.context_mixing in C: code (or decode) one batch of quantization codes with a
 * context-mixing binary arithmetic coder. The model layout, binarisation and every integer operation are
 * documented in context_mixing.py and docs/format.md; this file must stay bit-for-bit in step with them.
 * Loaded with ctypes (no Python objects cross the boundary); the module init below only lets setuptools
 * build it as an extension. */
#include <Python.h>
#include <stdint.h>

#define UNARY_MAX 16
#define TAIL_BITS 15
#define TAIL_SLOT (2 + UNARY_MAX)
#define LOW_SLOT (TAIL_SLOT + TAIL_BITS)
#define NC 11
#define N_EXACT 34
#define N_INPUTS 8
#define LIMIT 60
#define MIX_SHIFT 16
#define MAX_CODE_BYTES 192
#define LEARNING_SHIFT 10
#define APM_RATE 6
#define APM_WEIGHT 2
#define WEIGHT_LIMIT (1 << 30) /* mixer weights saturate here instead of wrapping the int32 on huge levels */
#define MODEL_LAYOUT 2 /* models as (entries, 2); 1 was (2, entries): a build of the other layout must not load */

#if (-1 >> 1) != -1
#error "streams depend on arithmetic right shifts of negative numbers"
#endif

typedef struct {
    int encoding;
    int32_t *restrict models; /* (entries, 2): probability of a 1 (16 bits), times used: one cache line per model */
    int32_t *restrict weights; /* (sets, N_INPUTS) */
    int32_t *restrict apm;     /* (sets * 33) */
    uint8_t *restrict buf;
    int64_t buf_size;
    const int32_t *restrict stretch, *restrict squash;
    const int64_t *restrict rate;
    /* the arithmetic coder's registers (the caller's coder array holds them between calls) */
    uint32_t x1, x2, x;
    int64_t pos;
    /* the point being coded: each model's index without its slot term, and the mixer / APM contexts */
    int64_t base[N_INPUTS - 1];
    int64_t a, d;
} State;

/* Each model's index is base + slot * stride, the slot being the decision slot or its shared form (sh). */
static const int64_t SLOT_STRIDE[N_INPUTS - 1] = {16 * 16, NC * NC, NC * NC * NC, 16 * NC, 16 * 16, N_EXACT, N_EXACT};
static const int USES_SHARED_SLOT[N_INPUTS - 1] = {0, 1, 1, 1, 1, 0, 0};

static inline int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

static inline int64_t capped_magnitude(int64_t code) { return clamp(code < 0 ? -code : code, 0, 64); }

/* a neighbour's class: 1 for 0, 2 / 3 for +1 / -1, 4 / 5 for +-2, 6 / 7 for +-3..4, 8 / 9 for +-5.., 10 for the escape
 * (0 is an unknown neighbour); a table on the clamped code, as branches on random codes mispredict */
static const int8_t CLASS_OF_CLAMPED[11] = {9, 7, 7, 5, 3, 1, 2, 4, 6, 6, 8};
static inline int neighbour_class(int64_t code) {
    return code == -32768 ? 10 : CLASS_OF_CLAMPED[clamp(code, -5, 5) + 5];
}

static inline int exact_class(int64_t code) {
    if (code == -32768) return 1;
    return (int)(2 + clamp(code, -15, 16) + 15);
}

static inline __attribute__((always_inline)) int code_bit(State *st, int bit, uint32_t p) {
    uint32_t x1 = st->x1, x2 = st->x2;
    uint32_t xmid = x1 + ((x2 - x1) >> 12) * p;
    if (!st->encoding) bit = st->x <= xmid ? 1 : 0;
    if (bit) x2 = xmid; else x1 = xmid + 1;
    while (((x1 ^ x2) & 0xFF000000u) == 0) {
        int64_t pos = st->pos;
        if (st->encoding) {
            if (pos < st->buf_size) st->buf[pos] = (uint8_t)(x2 >> 24);
        } else {
            uint32_t nxt = pos + 4 < st->buf_size ? st->buf[pos + 4] : 0;
            st->x = (st->x << 8) | nxt;
        }
        st->pos = pos + 1;
        x1 <<= 8;
        x2 = (x2 << 8) | 255;
    }
    st->x1 = x1; st->x2 = x2;
    return bit;
}

/* b2: binarisation 2's mixing, which leaves out model 1 (its context is part of model 2's: dropping it made the
 * shared fields' streams 0.2-0.4% smaller) and leaves the mixer's weights as they are after a decision it predicted
 * within SKIP_ERROR / 4096 (about 8% faster, no larger). */
#define SKIP_ERROR 16
static inline __attribute__((always_inline)) int decide(State *st, int64_t s, int64_t sh, int bit, const int b2) {
    int32_t *restrict m = st->models;
    int32_t *restrict w = st->weights + (s * 16 + st->a) * N_INPUTS;
    int64_t idx[N_INPUTS - 1];
    int32_t x[N_INPUTS - 1];
    int64_t dot = (int64_t)w[N_INPUTS - 1] * 256;
    for (int i = 0; i < N_INPUTS - 1; i++) {
        if (b2 && i == 1) { x[i] = 0; idx[i] = 0; continue; }
        idx[i] = 2 * (st->base[i] + (USES_SHARED_SLOT[i] ? sh : s) * SLOT_STRIDE[i]);
        x[i] = st->stretch[m[idx[i]] >> 4];
        dot += (int64_t)w[i] * x[i];
    }
    int64_t mixed = clamp(dot >> MIX_SHIFT, -2047, 2047);
    int64_t p = st->squash[mixed + 2047];
    int64_t lo = (s * 16 + st->d) * 33 + ((mixed + 2047) >> 7);
    int64_t frac = (mixed + 2047) & 127;
    int32_t *restrict apm = st->apm;
    int64_t refined = ((int64_t)apm[lo] * (128 - frac) + (int64_t)apm[lo + 1] * frac) >> 11;
    int64_t final = clamp((p * (4 - APM_WEIGHT) + refined * APM_WEIGHT) >> 2, 1, 4095);
    bit = code_bit(st, bit, (uint32_t)final);
    int64_t near = lo + (frac >> 6);
    apm[near] = (int32_t)(apm[near] + ((((int64_t)bit << 16) - apm[near]) >> APM_RATE));
    int64_t err = ((int64_t)bit << 12) - p;
    if (!b2 || err > SKIP_ERROR || err < -SKIP_ERROR) {
        for (int i = 0; i < N_INPUTS - 1; i++)
            w[i] = (int32_t)clamp(w[i] + (((int64_t)x[i] * err) >> LEARNING_SHIFT), -WEIGHT_LIMIT, WEIGHT_LIMIT);
        w[N_INPUTS - 1] = (int32_t)clamp(w[N_INPUTS - 1] + ((256 * err) >> LEARNING_SHIFT), -WEIGHT_LIMIT,
                                         WEIGHT_LIMIT);
    }
    int64_t target = (int64_t)bit << 16;
    for (int i = 0; i < N_INPUTS - 1; i++) {
        if (b2 && i == 1) continue;
        int32_t *restrict model = m + idx[i];
        int32_t n = model[1];
        model[0] = (int32_t)clamp(model[0] + (((target - model[0]) * st->rate[n]) >> 16), 16, 65520);
        if (n < LIMIT) model[1] = n + 1;
    }
    return bit;
}

static inline int64_t shared_slot1(int64_t s) { return s < TAIL_SLOT ? s : (s < LOW_SLOT ? TAIL_SLOT : TAIL_SLOT + 1); }
#define DECIDE1(s, bit) decide(&st, (s), shared_slot1(s), (bit), 0)

/* Binarisation 2 (format 1.7): fewer decisions for large codes (code_b2 below). */
#define LADDER 4
#define B2_ESCAPE (LADDER + 1)
#define B2_LENGTH (B2_ESCAPE + 1)
#define B2_MAX_LENGTH 14
#define B2_SIGN (B2_LENGTH + B2_MAX_LENGTH)
#define B2_LOW (B2_SIGN + 3)

/* Binarisation 3 (format 1.8, the fast profile): binarisation 2's decisions, each coded with two adaptive models --
 * (slot, coarse context, neighbour magnitude bucket, detail; the tail's tree slots without a context) and (shared
 * slot, left, up, front classes) -- mixed by one weight pair per slot, no APM: half the time per decision of the
 * six-model mix for 4-6% more bytes (the shared fields' codes, rel 1e-2..1e-4). */
#define FAST_STRIDE_0 (16 * 8 * 16)
#define FAST_STRIDE_1 (NC * NC * NC)
static inline __attribute__((always_inline)) int decide_fast(State *st, int64_t s, int64_t sh, int bit) {
    /* the tail's tree slots: one model each, without the point's context (rare decisions) */
    int64_t i0 = s < B2_LOW ? st->base[0] + s * FAST_STRIDE_0 : st->base[2] + s - B2_LOW;
    int32_t *restrict m0 = st->models + 2 * i0;
    int32_t *restrict m1 = st->models + 2 * (st->base[1] + sh * FAST_STRIDE_1);
    int32_t *restrict w = st->weights + s * 16 * N_INPUTS;
    int32_t x0 = st->stretch[m0[0] >> 4], x1 = st->stretch[m1[0] >> 4];
    int64_t mixed = clamp(((int64_t)w[0] * x0 + (int64_t)w[1] * x1) >> MIX_SHIFT, -2047, 2047);
    int64_t p = st->squash[mixed + 2047];
    bit = code_bit(st, bit, (uint32_t)p);
    int64_t err = ((int64_t)bit << 12) - p;
    w[0] = (int32_t)clamp(w[0] + (((int64_t)x0 * err) >> LEARNING_SHIFT), -WEIGHT_LIMIT, WEIGHT_LIMIT);
    w[1] = (int32_t)clamp(w[1] + (((int64_t)x1 * err) >> LEARNING_SHIFT), -WEIGHT_LIMIT, WEIGHT_LIMIT);
    int64_t target = (int64_t)bit << 16;
    int32_t *restrict models[2] = {m0, m1};
    for (int i = 0; i < 2; i++) {
        int32_t *restrict model = models[i];
        int32_t n = model[1];
        model[0] = (int32_t)clamp(model[0] + (((target - model[0]) * st->rate[n]) >> 16), 16, 65520);
        if (n < LIMIT) model[1] = n + 1;
    }
    return bit;
}

/* One decision of binarisation 1, 2 (the six- or seven-model mix: ``decide``) or 3 (``decide_fast``). */
static inline __attribute__((always_inline)) int decide_as(State *st, int64_t s, int64_t sh, int bit,
                                                           const int binarisation) {
    return binarisation == 3 ? decide_fast(st, s, sh, bit) : decide(st, s, sh, bit, binarisation == 2);
}

/* The low ``count`` bits of ``value`` below its leading one, most significant first, the first four by a context tree
 * (slot ``slot_base + 16 n + prefix``, ``prefix`` starting at ``rec``), the rest at p = 1/2; returns the prefix with
 * them appended (decoding: the value read). */
static inline __attribute__((always_inline)) int64_t tree_bits(State *st, int64_t value, int64_t count, int64_t rec,
                                                               int64_t slot_base, int64_t n, int64_t shared,
                                                               const int binarisation) {
    for (int64_t k = count - 1; k >= 0; k--) {
        int bit;
        if (rec < 16) bit = decide_as(st, slot_base + n * 16 + rec, shared, (int)((value >> k) & 1), binarisation);
        else bit = code_bit(st, (int)((value >> k) & 1), 2048);
        rec = (rec << 1) | bit;
    }
    return rec;
}

/* A decision of binarisation 2 or 3: the neighbour models share one slot among the tail tree's. */
static inline __attribute__((always_inline)) int decide_b2(State *st, int64_t s, int bit, const int binarisation) {
    return decide_as(st, s, s < B2_LOW ? s : B2_LOW, bit, binarisation);
}

#define BEYOND_RADIUS INT64_MIN
#define PAST_THE_END (-2) /* code_batch's result when decoding read past the coded bytes */
/* One code in binarisation 2 or 3: nonzero; m > k for k = 1..LADDER; from m > LADDER on, escape?; then
 * r = m - LADDER - 1 in Exp-Golomb (length n of r + 1 in unary, then its n low bits, the first four below the
 * leading one modelled per (n, prefix)); the sign last, in one of three slots by magnitude. Returns the code
 * (decoding: the one read), or BEYOND_RADIUS for a code only a damaged stream holds. */
static inline __attribute__((always_inline)) int64_t code_b2(State *st, int64_t value, const int binarisation) {
    int64_t magnitude = value < 0 ? -value : value;
    if (!decide_b2(st, 0, magnitude ? 1 : 0, binarisation)) return 0;
    int escape = value == -32768;
    if (escape) magnitude = 32767 + LADDER; /* past every ladder step: the escape decision comes next */
    int64_t m = 1;
    while (m <= LADDER && decide_b2(st, m, magnitude > m, binarisation)) m++;
    if (m > LADDER && decide_b2(st, B2_ESCAPE, escape, binarisation)) return -32768;
    if (m > LADDER) {
        int64_t v = st->encoding ? magnitude - LADDER : 0; /* r + 1 >= 1 */
        int64_t n = 0;
        while (n < B2_MAX_LENGTH && decide_b2(st, B2_LENGTH + n, (v >> (n + 1)) > 0, binarisation)) n++;
        m = LADDER + tree_bits(st, v, n, 1, B2_LOW, n, B2_LOW, binarisation);
        if (m > 32767) return BEYOND_RADIUS; /* only a damaged stream decodes a code beyond the radius */
    }
    return decide_b2(st, B2_SIGN + (m == 1 ? 0 : (m <= LADDER ? 1 : 2)), value < 0, binarisation) ? -m : m;
}

/* The batch loop, inlined once per binarisation (a constant there) so that each copy computes only its own
 * contexts. */
static inline __attribute__((always_inline)) int64_t code_batch(
        const int binarisation, int encoding, int16_t *codes, int64_t size, const uint8_t *contexts,
        const uint8_t *details, int64_t n1, int64_t n2, int32_t *models, int32_t *weights, int32_t *apm,
        int64_t *coder, uint8_t *buf, int64_t buf_size, const int32_t *stretch, const int32_t *squash,
        const int64_t *rate, const int64_t *offsets, int64_t start) {
    State st;
    st.encoding = encoding; st.models = models; st.weights = weights; st.apm = apm; st.buf = buf;
    st.buf_size = buf_size; st.stretch = stretch; st.squash = squash; st.rate = rate;
    st.x1 = (uint32_t)coder[0]; st.x2 = (uint32_t)coder[1]; st.x = (uint32_t)coder[2]; st.pos = coder[3];
    int64_t plane = n1 * n2;
    /* position of t within its (n1, n2) plane, kept by counting instead of dividing */
    int64_t i2 = start % n2, i1 = (start / n2) % n1;
    int64_t t = start;
    int64_t result = size;
    for (; t < size; t++) {
        if (encoding && st.pos + MAX_CODE_BYTES > buf_size) { result = t; break; }
        int64_t left = i2 > 0 ? codes[t - 1] : 0;
        int64_t up = i1 > 0 ? codes[t - n2] : 0;
        int64_t front = t >= plane ? codes[t - plane] : 0;
        int64_t total = capped_magnitude(left) + capped_magnitude(up) + capped_magnitude(front);
        int64_t bucket = total > 0 ? 64 - __builtin_clzll((uint64_t)total) : 0; /* its bit length */
        int64_t a = contexts[t] & 15, d = details[t] & 15;
        int64_t cl = i2 > 0 ? neighbour_class(left) : 0;
        int64_t cu = i1 > 0 ? neighbour_class(up) : 0;
        int64_t cf = t >= plane ? neighbour_class(front) : 0;
        if (binarisation == 3) {
            st.base[0] = offsets[0] + (a * 8 + (bucket < 7 ? bucket : 7)) * 16 + d;
            st.base[1] = offsets[1] + (cl * NC + cu) * NC + cf;
            st.base[2] = offsets[0] + B2_LOW * FAST_STRIDE_0;
        } else {
            int64_t eu = i1 > 0 ? exact_class(up) : 0;
            int64_t el = i2 > 0 ? exact_class(left) : 0;
            st.a = a; st.d = d;
            st.base[0] = offsets[0] + a * 16 + d;
            st.base[1] = offsets[1] + cl * NC + cu;
            st.base[2] = offsets[2] + (cl * NC + cu) * NC + cf;
            st.base[3] = offsets[3] + d * NC + cl;
            st.base[4] = offsets[4] + a * 16 + bucket;
            st.base[5] = offsets[5] + eu;
            st.base[6] = offsets[6] + el;
        }
        int64_t value = encoding ? codes[t] : 0;
        int64_t magnitude = value < 0 ? -value : value;
        int64_t m = 0;
        if (binarisation == 1) {
            if (DECIDE1(0, magnitude ? 1 : 0)) {
                if (DECIDE1(1, value == -32768)) {
                    m = -32768;
                } else {
                    int negative = DECIDE1(2, value < 0);
                    m = 1;
                    while (m < UNARY_MAX && DECIDE1(2 + m, magnitude > m)) m++;
                    if (m == UNARY_MAX) {
                        int64_t r = encoding ? magnitude - UNARY_MAX : 0;
                        int64_t length = 0;
                        while ((r >> length) > 0) length++;
                        int64_t nbits = 0;
                        while (nbits < TAIL_BITS && DECIDE1(TAIL_SLOT + nbits, length > nbits)) nbits++;
                        int64_t rec = tree_bits(&st, r, nbits - 1, nbits > 0 ? 1 : 0, LOW_SLOT, nbits,
                                                TAIL_SLOT + 1, 1);
                        m = UNARY_MAX + rec;
                        if (m > 32767) { result = -1; break; } /* only a damaged stream decodes a code beyond the radius */
                    }
                    if (negative) m = -m;
                }
            }
        } else {
            m = code_b2(&st, value, binarisation);
            if (m == BEYOND_RADIUS) { result = -1; break; }
        }
        if (!encoding) {
            codes[t] = (int16_t)m;
            /* The decoder shifts in step with the encoder, whose bytes end 4 before the buffer's end (the flush):
             * reading past them means the stream holds fewer codes than asked for (damaged, or a header claiming a
             * larger shape), so stop here instead of decoding the zeros beyond. */
            if (st.pos + 4 > buf_size) { result = PAST_THE_END; break; }
        }
        if (++i2 == n2) { i2 = 0; if (++i1 == n1) i1 = 0; }
    }
    coder[0] = st.x1; coder[1] = st.x2; coder[2] = st.x; coder[3] = st.pos;
    return result;
}

int64_t srnsz_code_batch(int binarisation, int encoding, int16_t *codes, int64_t size, const uint8_t *contexts,
                         const uint8_t *details, int64_t n1, int64_t n2, int32_t *models, int64_t entries,
                         int32_t *weights, int32_t *apm, int64_t *coder, uint8_t *buf, int64_t buf_size,
                         const int32_t *stretch, const int32_t *squash, const int64_t *rate,
                         const int64_t *offsets, int64_t start) {
    (void)entries;
#define CODE_BATCH(b) code_batch((b), encoding, codes, size, contexts, details, n1, n2, models, weights, apm, coder, \
                                 buf, buf_size, stretch, squash, rate, offsets, start)
    switch (binarisation) {
        case 1: return CODE_BATCH(1);
        case 2: return CODE_BATCH(2);
        default: return CODE_BATCH(3);
    }
#undef CODE_BATCH
}

/* The constants above, for the Python side to check against its own at import (a stale build fails loudly). */
void srnsz_mixing_constants(int64_t *out) {
    const int64_t values[] = {UNARY_MAX, TAIL_BITS, NC, N_EXACT, N_INPUTS, LIMIT, MIX_SHIFT, MAX_CODE_BYTES,
                              LEARNING_SHIFT, APM_RATE, APM_WEIGHT, MODEL_LAYOUT, LADDER, B2_MAX_LENGTH, B2_LOW,
                              SKIP_ERROR, FAST_STRIDE_0};
    for (int i = 0; i < 17; i++) out[i] = values[i];
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mixing", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__mixing(void) { return PyModule_Create(&module); }
