/* deflate.c — a small DEFLATE (RFC 1951) encoder in a gzip member (RFC 1952), for the
 * compression-ratio diversity metric (include/tinyalign/diversity.h). zlib is not a
 * dependency of tinyalign, so this re-creates what gzip.compress(data, 9, mtime=0) does:
 *   - LZ77 as zlib's deflate_slow at level 9: 3-byte hash ((b0 << 10) ^ (b1 << 5) ^ b2)
 *     & 0x7FFF into head/prev chains (0 = empty, so position 0 is never a match source,
 *     as in zlib), chains cut at 4096 (1024 once the previous match is >= 32), distance
 *     <= 32506, lazy evaluation (a match is taken only if the next position does not
 *     start a longer one), 3-byte matches farther than 4096 dropped;
 *   - a block every 16383 symbols (zlib's literal buffer at memLevel 8) and at the end;
 *   - per block the cheapest of stored / fixed Huffman / dynamic Huffman, as zlib decides
 *     (stored when stored_len + 4 <= the coded bytes; fixed when no larger than dynamic);
 *   - dynamic codes: Huffman trees built as zlib's build_tree (heap by frequency then depth,
 *     dummy codes, gen_bitlen's length limit 15, 7 for the code-length code), code lengths
 *     run-length coded as zlib's scan_tree.
 * The input is compressed from memory in one pass (no streaming, no window slide). On every
 * input we tried (texts, random bytes, 190 KB mixed, 100 KB of zeros, sources) the output
 * equals Python's gzip.compress(data, 9, mtime=0) byte for byte; tests/test_curate.c checks
 * that on a set of strings and that Python decompresses ours.
 * Not here: decompression, levels other than 9, zlib/raw wrappers.
 */
#include <stdlib.h>
#include <string.h>

#include "tinyalign/diversity.h"

enum {
    WSIZE = 32768, HBITS = 15, HSIZE = 1 << HBITS, MIN_MATCH = 3, MAX_MATCH = 258,
    MIN_LOOKAHEAD = MAX_MATCH + MIN_MATCH + 1, MAX_DIST = WSIZE - MIN_LOOKAHEAD,
    TOO_FAR = 4096, MAX_CHAIN = 4096, GOOD_LENGTH = 32, NICE_LENGTH = 258,
    MAX_LAZY = 258, LIT_BUFSIZE = 16384, L_CODES = 286, D_CODES = 30, BL_CODES = 19
};

static const int LEN_BASE[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const int LEN_EXTRA[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                  2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const int DIST_BASE[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                  33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                  1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const int DIST_EXTRA[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                   6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
static const int BL_ORDER[BL_CODES] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                       11, 4,  12, 3, 13, 2, 14, 1, 15};

static int len_code(int len) { /* 3..258 -> index into LEN_BASE */
    int c = 28;
    while (LEN_BASE[c] > len) c--;
    return c;
}
static int dist_code(int d) { /* 1..32768 -> index into DIST_BASE */
    int c = 29;
    while (DIST_BASE[c] > d) c--;
    return c;
}

/* ---- bit output (LSB first) --------------------------------------------------------------- */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    uint64_t bits;
    int nbits;
} BitOut;

static void put_byte(BitOut *o, unsigned char b) {
    if (o->n == o->cap) {
        size_t c = o->cap ? 2 * o->cap : 1024;
        unsigned char *q = ta_malloc(c, "gzip output");
        if (o->n) memcpy(q, o->p, o->n);
        free(o->p);
        o->p = q;
        o->cap = c;
    }
    o->p[o->n++] = b;
}
static void put_bits(BitOut *o, uint32_t v, int n) {
    o->bits |= (uint64_t)v << o->nbits;
    o->nbits += n;
    while (o->nbits >= 8) {
        put_byte(o, (unsigned char)o->bits);
        o->bits >>= 8;
        o->nbits -= 8;
    }
}
static void align_byte(BitOut *o) {
    if (o->nbits > 0) put_bits(o, 0, 8 - o->nbits);
}
static uint32_t reverse(uint32_t code, int len) {
    uint32_t r = 0;
    for (int i = 0; i < len; i++) r = (r << 1) | ((code >> i) & 1);
    return r;
}

/* ---- Huffman code lengths: zlib's build_tree / gen_bitlen ------------------------------ */
enum { HEAP_SIZE = 2 * L_CODES + 1 };

typedef struct {
    uint32_t freq[HEAP_SIZE];
    int dad[HEAP_SIZE], len[HEAP_SIZE];
    uint8_t depth[HEAP_SIZE];
    int heap[HEAP_SIZE];
    int heap_len, heap_max;
} Tree;

/* zlib's smaller(): by frequency, ties by depth (shallower first) */
static int smaller(const Tree *t, int n, int m) {
    return t->freq[n] < t->freq[m] || (t->freq[n] == t->freq[m] && t->depth[n] <= t->depth[m]);
}

static void pqdownheap(Tree *t, int k) {
    int v = t->heap[k], j = k << 1;
    while (j <= t->heap_len) {
        if (j < t->heap_len && smaller(t, t->heap[j + 1], t->heap[j])) j++;
        if (smaller(t, v, t->heap[j])) break;
        t->heap[k] = t->heap[j];
        k = j;
        j <<= 1;
    }
    t->heap[k] = v;
}

/* Code lengths len[0..n) for freq[0..n), at most max_length bits, exactly as zlib builds
 * them (so equal-cost trees are broken the same way and the headers match): a heap by
 * (frequency, depth), dummy codes when fewer than two symbols occur, and gen_bitlen's
 * overflow repair. Returns max_code, the largest symbol with a length. */
static int huffman_lengths(int *len, const uint32_t *freq, int n, int max_length) {
    Tree *t = ta_calloc(sizeof(Tree), "huffman tree");
    int max_code = -1;
    t->heap_max = HEAP_SIZE;
    for (int i = 0; i < n; i++) {
        t->freq[i] = freq[i];
        if (freq[i]) t->heap[++t->heap_len] = max_code = i;
        len[i] = 0;
    }
    while (t->heap_len < 2) { /* dummies, as zlib: never sent, they only shape the tree */
        int node = t->heap[++t->heap_len] = (max_code < 2 ? ++max_code : 0);
        t->freq[node] = 1;
        t->depth[node] = 0;
    }
    for (int k = t->heap_len / 2; k >= 1; k--) pqdownheap(t, k);
    int node = n;
    do {
        int a = t->heap[1];
        t->heap[1] = t->heap[t->heap_len--];
        pqdownheap(t, 1);
        int b = t->heap[1];
        t->heap[--t->heap_max] = a;
        t->heap[--t->heap_max] = b;
        t->freq[node] = t->freq[a] + t->freq[b];
        t->depth[node] = (uint8_t)((t->depth[a] >= t->depth[b] ? t->depth[a] : t->depth[b]) + 1);
        t->dad[a] = t->dad[b] = node;
        t->heap[1] = node++;
        pqdownheap(t, 1);
    } while (t->heap_len >= 2);
    t->heap[--t->heap_max] = t->heap[1];
    /* gen_bitlen: lengths from the root down, capped at max_length */
    int bl_count[16] = {0}, overflow = 0, h;
    t->len[t->heap[t->heap_max]] = 0;
    for (h = t->heap_max + 1; h < HEAP_SIZE; h++) {
        int m = t->heap[h];
        int bits = t->len[t->dad[m]] + 1;
        if (bits > max_length) bits = max_length, overflow++;
        t->len[m] = bits;
        if (m > max_code) continue; /* not a leaf */
        bl_count[bits]++;
    }
    if (overflow) {
        do {
            int bits = max_length - 1;
            while (bl_count[bits] == 0) bits--;
            bl_count[bits]--;
            bl_count[bits + 1] += 2;
            bl_count[max_length]--;
            overflow -= 2;
        } while (overflow > 0);
        h = HEAP_SIZE;
        for (int bits = max_length; bits != 0; bits--) {
            int k = bl_count[bits];
            while (k != 0) {
                int m = t->heap[--h];
                if (m > max_code) continue;
                t->len[m] = bits;
                k--;
            }
        }
    }
    for (int i = 0; i <= max_code && i < n; i++) len[i] = t->len[i];
    free(t);
    return max_code;
}

/* Canonical codes (RFC 1951 3.2.2), bit-reversed for LSB-first output. */
static void canonical_codes(uint32_t *code, const int *len, int n) {
    int bl_count[16] = {0};
    for (int i = 0; i < n; i++) bl_count[len[i]]++;
    bl_count[0] = 0;
    uint32_t next[16] = {0}, c = 0;
    for (int b = 1; b < 16; b++) {
        c = (c + (uint32_t)bl_count[b - 1]) << 1;
        next[b] = c;
    }
    for (int i = 0; i < n; i++)
        if (len[i]) code[i] = reverse(next[len[i]]++, len[i]);
}

/* ---- symbols of one block ----------------------------------------------------------------- */
typedef struct {
    uint16_t lit_or_len; /* literal byte, or match length */
    uint16_t dist;       /* 0 for a literal */
} Sym;

/* Run-length codes of one tree's code lengths (zlib's scan_tree): (symbol, extra value). */
static int rle_lengths(int *sym, int *extra, const int *len, int n) {
    int k = 0, prevlen = -1, nextlen = len[0], count = 0;
    int max_count = 7, min_count = 4;
    if (nextlen == 0) max_count = 138, min_count = 3;
    for (int i = 0; i < n; i++) {
        int curlen = nextlen;
        nextlen = i + 1 < n ? len[i + 1] : -1;
        if (++count < max_count && curlen == nextlen) continue;
        if (count < min_count) {
            for (int t = 0; t < count; t++) sym[k] = curlen, extra[k++] = 0;
        } else if (curlen != 0) {
            if (curlen != prevlen) sym[k] = curlen, extra[k++] = 0, count--;
            sym[k] = 16, extra[k++] = count - 3;
        } else if (count <= 10) {
            sym[k] = 17, extra[k++] = count - 3;
        } else {
            sym[k] = 18, extra[k++] = count - 11;
        }
        count = 0;
        prevlen = curlen;
        if (nextlen == 0) max_count = 138, min_count = 3;
        else if (curlen == nextlen) max_count = 6, min_count = 3;
        else max_count = 7, min_count = 4;
    }
    return k;
}

static int fixed_lit_len(int s) { return s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8; }

static void write_block(BitOut *o, const unsigned char *data, size_t start, size_t stored_len,
                        const Sym *syms, int nsym, int last) {
    uint32_t lf[L_CODES] = {0}, df[D_CODES] = {0};
    uint64_t extra_bits = 0;
    for (int i = 0; i < nsym; i++) {
        if (syms[i].dist == 0) {
            lf[syms[i].lit_or_len]++;
        } else {
            int lc = len_code(syms[i].lit_or_len), dc = dist_code(syms[i].dist);
            lf[257 + lc]++;
            df[dc]++;
            extra_bits += (uint64_t)LEN_EXTRA[lc] + (uint64_t)DIST_EXTRA[dc];
        }
    }
    lf[256] = 1;
    /* dynamic trees */
    int ll[L_CODES], dl[D_CODES], bl[BL_CODES];
    int hlit = huffman_lengths(ll, lf, L_CODES, 15) + 1;
    int hdist = huffman_lengths(dl, df, D_CODES, 15) + 1;
    int rs[L_CODES + D_CODES], rx[L_CODES + D_CODES];
    int nr1 = rle_lengths(rs, rx, ll, hlit);
    int nr2 = rle_lengths(rs + nr1, rx + nr1, dl, hdist);
    int nr = nr1 + nr2;
    uint32_t bf[BL_CODES] = {0};
    for (int i = 0; i < nr; i++) bf[rs[i]]++;
    huffman_lengths(bl, bf, BL_CODES, 7);
    int hclen = BL_CODES;
    while (hclen > 4 && bl[BL_ORDER[hclen - 1]] == 0) hclen--;
    uint64_t dyn = 5 + 5 + 4 + 3 * (uint64_t)hclen + extra_bits; /* + 3 header bits below */
    for (int i = 0; i < nr; i++)
        dyn += (uint64_t)bl[rs[i]] + (rs[i] == 16 ? 2 : rs[i] == 17 ? 3 : rs[i] == 18 ? 7 : 0);
    uint64_t fix = extra_bits;
    for (int s = 0; s < L_CODES; s++) {
        dyn += (uint64_t)lf[s] * (uint64_t)ll[s];
        fix += (uint64_t)lf[s] * (uint64_t)fixed_lit_len(s);
    }
    for (int s = 0; s < D_CODES; s++) dyn += (uint64_t)df[s] * (uint64_t)dl[s], fix += df[s] * 5ull;
    /* zlib's choice */
    uint64_t opt_lenb = (dyn + 3 + 7) >> 3, static_lenb = (fix + 3 + 7) >> 3;
    if (static_lenb <= opt_lenb) opt_lenb = static_lenb;
    if (stored_len + 4 <= opt_lenb && stored_len <= 65535) {
        put_bits(o, (uint32_t)last, 1);
        put_bits(o, 0, 2);
        align_byte(o);
        put_bits(o, (uint32_t)stored_len, 16);
        put_bits(o, (uint32_t)(~stored_len & 0xFFFF), 16);
        for (size_t i = 0; i < stored_len; i++) put_byte(o, data[start + i]);
        return;
    }
    int use_fixed = static_lenb == opt_lenb;
    /* the fixed code is canonical over all 288 lit/len symbols (286, 287 are never sent but
     * shape the codes) */
    int fl[288];
    uint32_t lcode[288] = {0}, dcode[D_CODES] = {0}, bcode[BL_CODES] = {0};
    if (use_fixed) {
        for (int s = 0; s < 288; s++) fl[s] = fixed_lit_len(s);
        for (int s = 0; s < L_CODES; s++) ll[s] = fl[s];
        for (int s = 0; s < D_CODES; s++) dl[s] = 5;
        canonical_codes(lcode, fl, 288);
    } else {
        canonical_codes(lcode, ll, L_CODES);
    }
    canonical_codes(dcode, dl, D_CODES);
    put_bits(o, (uint32_t)last, 1);
    put_bits(o, use_fixed ? 1 : 2, 2);
    if (!use_fixed) {
        canonical_codes(bcode, bl, BL_CODES);
        put_bits(o, (uint32_t)(hlit - 257), 5);
        put_bits(o, (uint32_t)(hdist - 1), 5);
        put_bits(o, (uint32_t)(hclen - 4), 4);
        for (int i = 0; i < hclen; i++) put_bits(o, (uint32_t)bl[BL_ORDER[i]], 3);
        for (int i = 0; i < nr; i++) {
            put_bits(o, bcode[rs[i]], bl[rs[i]]);
            if (rs[i] == 16) put_bits(o, (uint32_t)rx[i], 2);
            else if (rs[i] == 17) put_bits(o, (uint32_t)rx[i], 3);
            else if (rs[i] == 18) put_bits(o, (uint32_t)rx[i], 7);
        }
    }
    for (int i = 0; i < nsym; i++) {
        if (syms[i].dist == 0) {
            put_bits(o, lcode[syms[i].lit_or_len], ll[syms[i].lit_or_len]);
        } else {
            int len = syms[i].lit_or_len, d = syms[i].dist;
            int lc = len_code(len), dc = dist_code(d);
            put_bits(o, lcode[257 + lc], ll[257 + lc]);
            put_bits(o, (uint32_t)(len - LEN_BASE[lc]), LEN_EXTRA[lc]);
            put_bits(o, dcode[dc], dl[dc]);
            put_bits(o, (uint32_t)(d - DIST_BASE[dc]), DIST_EXTRA[dc]);
        }
    }
    put_bits(o, lcode[256], ll[256]);
}

/* ---- LZ77 (zlib deflate_slow, level 9) ----------------------------------------------------- */
typedef struct {
    const unsigned char *w;
    size_t n;
    uint32_t *head; /* (HSIZE) most recent position + 0, 0 = none */
    uint32_t *prev; /* (WSIZE) previous position with the same hash */
    size_t match_start;
} Lz;

static uint32_t hash3(const unsigned char *p) {
    return (((uint32_t)p[0] << 10) ^ ((uint32_t)p[1] << 5) ^ p[2]) & (HSIZE - 1);
}

/* INSERT_STRING: returns the previous head of s's hash chain. */
static uint32_t insert(Lz *z, size_t s) {
    uint32_t h = hash3(z->w + s);
    uint32_t m = z->head[h];
    z->prev[s & (WSIZE - 1)] = m;
    z->head[h] = (uint32_t)s;
    return m;
}

static int longest_match(Lz *z, size_t strstart, uint32_t cur, int prev_length) {
    size_t lookahead = z->n - strstart;
    int chain = MAX_CHAIN;
    if (prev_length >= GOOD_LENGTH) chain >>= 2;
    int nice = NICE_LENGTH < (int)lookahead ? NICE_LENGTH : (int)lookahead;
    int best = prev_length;
    size_t limit = strstart > MAX_DIST ? strstart - MAX_DIST : 0;
    const unsigned char *scan = z->w + strstart;
    int maxl = MAX_MATCH < (int)lookahead ? MAX_MATCH : (int)lookahead;
    do {
        const unsigned char *m = z->w + cur;
        if (best < maxl && (m[best] != scan[best] || m[best - 1] != scan[best - 1] ||
                            m[0] != scan[0] || m[1] != scan[1]))
            continue;
        if (best >= maxl) break;
        int len = 0;
        while (len < maxl && m[len] == scan[len]) len++;
        if (len > best) {
            z->match_start = cur;
            best = len;
            if (len >= nice) break;
        }
    } while ((cur = z->prev[cur & (WSIZE - 1)]) > limit && --chain != 0);
    return best <= (int)lookahead ? best : (int)lookahead;
}

unsigned char *diversity_gzip(const void *data, size_t len, size_t *out_len) {
    BitOut o = {0};
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3};
    for (int i = 0; i < 10; i++) put_byte(&o, hdr[i]);
    Lz z = {.w = data, .n = len};
    z.head = ta_calloc(HSIZE * sizeof(uint32_t), "gzip hash");
    z.prev = ta_calloc(WSIZE * sizeof(uint32_t), "gzip hash");
    Sym *syms = ta_malloc(LIT_BUFSIZE * sizeof(Sym), "gzip symbols");
    int nsym = 0;
    size_t block_start = 0, strstart = 0;
    int prev_length, match_length = MIN_MATCH - 1, match_available = 0;
    size_t prev_match = 0;
#define TALLY(lit_, dist_)                                                                   \
    do {                                                                                     \
        syms[nsym].lit_or_len = (uint16_t)(lit_);                                            \
        syms[nsym].dist = (uint16_t)(dist_);                                                 \
        nsym++;                                                                              \
    } while (0)
#define FLUSH(end_pos)                                                                       \
    do {                                                                                     \
        write_block(&o, z.w, block_start, (end_pos) - block_start, syms, nsym, 0);           \
        block_start = (end_pos);                                                             \
        nsym = 0;                                                                            \
    } while (0)
    while (strstart < len) {
        size_t lookahead = len - strstart;
        uint32_t hash_head = 0;
        if (lookahead >= MIN_MATCH) hash_head = insert(&z, strstart);
        prev_length = match_length;
        prev_match = z.match_start;
        match_length = MIN_MATCH - 1;
        if (hash_head != 0 && prev_length < MAX_LAZY && strstart - hash_head <= MAX_DIST) {
            match_length = longest_match(&z, strstart, hash_head, prev_length);
            if (match_length == MIN_MATCH && strstart - z.match_start > TOO_FAR)
                match_length = MIN_MATCH - 1;
        }
        if (prev_length >= MIN_MATCH && match_length <= prev_length) {
            size_t max_insert = strstart + lookahead - MIN_MATCH;
            TALLY(prev_length, strstart - 1 - prev_match);
            /* insert the strings of the match (the first two were done) */
            size_t endm = strstart - 1 + (size_t)prev_length;
            for (size_t p = strstart + 1; p < endm; p++)
                if (p <= max_insert) insert(&z, p);
            match_available = 0;
            match_length = MIN_MATCH - 1;
            strstart = endm;
            if (nsym == LIT_BUFSIZE - 1) FLUSH(strstart);
        } else if (match_available) {
            TALLY(z.w[strstart - 1], 0);
            if (nsym == LIT_BUFSIZE - 1) FLUSH(strstart);
            strstart++;
        } else {
            match_available = 1;
            strstart++;
        }
    }
    if (match_available) TALLY(z.w[strstart - 1], 0);
    write_block(&o, z.w, block_start, len - block_start, syms, nsym, 1);
    align_byte(&o);
#undef TALLY
#undef FLUSH
    uint32_t crc = ta_crc32(0, data, len);
    for (int i = 0; i < 4; i++) put_byte(&o, (unsigned char)(crc >> (8 * i)));
    for (int i = 0; i < 4; i++) put_byte(&o, (unsigned char)((uint32_t)len >> (8 * i)));
    free(z.head);
    free(z.prev);
    free(syms);
    *out_len = o.n;
    return o.p;
}
