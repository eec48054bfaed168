// spm_wrap.cc — the C API of include/tinyalign/tokenizer.h over libsentencepiece.
//
// This is the engine's only C++ file. It implements load/free, encode/decode (exactly
// SentencePieceProcessor::Encode/Decode), piece and special-id look-ups, and training via
// SentencePieceTrainer's key=value map. Every entry point catches every exception and
// turns SentencePiece's util::Status into TA_EINPUT + a message, so nothing C++ crosses
// into C.
// It deliberately does not: add BOS/EOS, do sampling or n-best encodings, expose protobufs,
// or accept any other tokenizer kind.
// Known limit: SentencePiece's trainer aborts the process on a few internal CHECKs; the
// options are validated here first so that ordinary mistakes come back as errors instead.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <unordered_map>
#include <vector>

extern "C" {
#include "tinyalign/common.h"
}
#include "tinyalign/tokenizer.h"

struct Tokenizer {
    sentencepiece::SentencePieceProcessor sp;
    std::string path; // the .model file actually loaded
};

// Wraps a body so that no exception escapes: bad_alloc is a runtime failure, anything
// else (SentencePiece does not throw on bad input, so this is unexpected) too.
#define TA_CATCH_ALL(err, where)                                                     \
    catch (const std::bad_alloc &) {                                                 \
        return ta_err(err, TA_ERUNTIME, "%s: out of memory", where);                 \
    }                                                                                \
    catch (const std::exception &e) {                                                \
        return ta_err(err, TA_ERUNTIME, "%s: %s", where, e.what());                  \
    }                                                                                \
    catch (...) {                                                                    \
        return ta_err(err, TA_ERUNTIME, "%s: unknown C++ exception", where);         \
    }

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

extern "C" int tokenizer_load(Tokenizer **out, const char *model_path, TaError *err) {
    *out = nullptr;
    Tokenizer *tok = nullptr;
    try {
        std::string path = model_path;
        if (is_dir(model_path)) path += "/tokenizer.model";
        FILE *f = fopen(path.c_str(), "rb");
        if (!f)
            return ta_err(err, TA_EINPUT, "%s: cannot open tokenizer model: %s", path.c_str(),
                          strerror(errno));
        fclose(f);
        tok = new Tokenizer();
        tok->path = path;
        auto st = tok->sp.Load(path);
        if (!st.ok()) {
            delete tok;
            return ta_err(err, TA_EINPUT,
                          "%s: not a SentencePiece model (expected a .model file written by "
                          "`tinyalign tokenizer train` or spm_train): %s",
                          path.c_str(), st.ToString().c_str());
        }
        *out = tok;
        return TA_OK;
    }
    catch (const std::bad_alloc &) {
        delete tok;
        return ta_err(err, TA_ERUNTIME, "%s: out of memory loading the tokenizer", model_path);
    }
    catch (const std::exception &e) {
        // SentencePiece builds its tries from the model file and throws on malformed ones
        // (darts_clone: "zero-length key"): a bad model, not a failed machine
        delete tok;
        return ta_err(err, TA_EINPUT,
                      "%s: not a usable SentencePiece model (its vocabulary is malformed: %s)",
                      model_path, e.what());
    }
    catch (...) {
        delete tok;
        return ta_err(err, TA_ERUNTIME, "%s: unknown C++ exception", model_path);
    }
}

extern "C" void tokenizer_free(Tokenizer *tok) { delete tok; }

extern "C" const char *tokenizer_path(const Tokenizer *tok) { return tok->path.c_str(); }

extern "C" int tokenizer_encode(const Tokenizer *tok, const char *text, size_t len, int **ids,
                                int *n, TaError *err) {
    *ids = nullptr;
    *n = 0;
    try {
        std::vector<int> v;
        auto st = tok->sp.Encode(absl::string_view(text, len), &v);
        if (!st.ok())
            return ta_err(err, TA_EINPUT, "%s: encode failed: %s", tok->path.c_str(),
                          st.ToString().c_str());
        int *a = (int *)ta_malloc(v.size() * sizeof(int), "token ids");
        if (!v.empty()) memcpy(a, v.data(), v.size() * sizeof(int));
        *ids = a;
        *n = (int)v.size();
        return TA_OK;
    }
    TA_CATCH_ALL(err, tok->path.c_str())
}

extern "C" int tokenizer_decode(const Tokenizer *tok, const int *ids, int n, char **text,
                                TaError *err) {
    *text = nullptr;
    try {
        int V = tok->sp.GetPieceSize();
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= V)
                return ta_err(err, TA_EINPUT, "id %d at position %d is outside [0, %d) of %s",
                              ids[i], i, V, tok->path.c_str());
        std::vector<int> v(ids, ids + n);
        std::string s;
        auto st = tok->sp.Decode(v, &s);
        if (!st.ok())
            return ta_err(err, TA_EINPUT, "%s: decode failed: %s", tok->path.c_str(),
                          st.ToString().c_str());
        char *t = (char *)ta_malloc(s.size() + 1, "decoded text");
        memcpy(t, s.data(), s.size());
        t[s.size()] = '\0';
        *text = t;
        return TA_OK;
    }
    TA_CATCH_ALL(err, tok->path.c_str())
}

extern "C" int tokenizer_vocab_size(const Tokenizer *tok) { return tok->sp.GetPieceSize(); }

extern "C" const char *tokenizer_id_to_piece(const Tokenizer *tok, int id) {
    if (id < 0 || id >= tok->sp.GetPieceSize()) return nullptr;
    return tok->sp.IdToPiece(id).c_str(); // a reference into the model proto: stable
}

extern "C" int tokenizer_piece_to_id(const Tokenizer *tok, const char *piece) {
    try {
        int id = tok->sp.PieceToId(piece);
        // SentencePiece answers unk_id for an unknown piece; tell the two cases apart.
        if (id == tok->sp.unk_id() && tok->sp.IdToPiece(id) != piece) return -1;
        return id;
    } catch (...) {
        return -1;
    }
}

extern "C" int tokenizer_bos_id(const Tokenizer *tok) { return tok->sp.bos_id(); }
extern "C" int tokenizer_eos_id(const Tokenizer *tok) { return tok->sp.eos_id(); }
extern "C" int tokenizer_pad_id(const Tokenizer *tok) { return tok->sp.pad_id(); }
extern "C" int tokenizer_unk_id(const Tokenizer *tok) { return tok->sp.unk_id(); }

extern "C" void tokenizer_train_defaults(TokenizerTrainOptions *opt) {
    memset(opt, 0, sizeof *opt);
    opt->model_type = "bpe";
    opt->byte_fallback = 1;
    opt->character_coverage = 0.9995;
    opt->normalization = "identity";
    opt->remove_extra_whitespaces = 0;
    opt->split_digits = 0;
    opt->unk_id = 0;
    opt->bos_id = 1;
    opt->eos_id = 2;
    opt->pad_id = 3;
    opt->num_threads = 1;
    opt->seed = 1;
}

extern "C" int tokenizer_train(const TokenizerTrainOptions *o, TaError *err) {
    try {
        // Validate what SentencePiece would otherwise CHECK-fail (abort) or misreport.
        if (!o->input || !o->model_prefix || !*o->model_prefix)
            return ta_err(err, TA_EINPUT, "tokenizer train: input and model prefix are required");
        FILE *f = fopen(o->input, "rb");
        if (!f)
            return ta_err(err, TA_EINPUT, "%s: cannot open training text: %s", o->input,
                          strerror(errno));
        fclose(f);
        std::string type = o->model_type ? o->model_type : "bpe";
        if (type != "bpe" && type != "unigram")
            return ta_err(err, TA_EINPUT,
                          "tokenizer train: model type \"%s\": expected bpe or unigram",
                          type.c_str());
        if (o->vocab_size <= 0)
            return ta_err(err, TA_EINPUT, "tokenizer train: vocab size %d: expected > 0",
                          o->vocab_size);
        if (!(o->character_coverage > 0.0 && o->character_coverage <= 1.0))
            return ta_err(err, TA_EINPUT,
                          "tokenizer train: character coverage %g: expected in (0, 1]",
                          o->character_coverage);
        std::string norm = o->normalization ? o->normalization : "identity";
        if (norm != "identity" && norm != "nmt_nfkc" && norm != "nfkc" &&
            norm != "nmt_nfkc_cf" && norm != "nfkc_cf")
            return ta_err(err, TA_EINPUT,
                          "tokenizer train: normalization \"%s\": expected identity, nmt_nfkc, "
                          "nfkc, nmt_nfkc_cf or nfkc_cf",
                          norm.c_str());
        if (o->unk_id < 0 || o->unk_id >= o->vocab_size)
            return ta_err(err, TA_EINPUT, "tokenizer train: unk id %d: expected in [0, %d)",
                          o->unk_id, o->vocab_size);
        const int sp_ids[4] = {o->unk_id, o->bos_id, o->eos_id, o->pad_id};
        const char *sp_names[4] = {"unk", "bos", "eos", "pad"};
        for (int i = 0; i < 4; i++) {
            if (sp_ids[i] < -1 || sp_ids[i] >= o->vocab_size)
                return ta_err(err, TA_EINPUT,
                              "tokenizer train: %s id %d: expected -1 or in [0, %d)",
                              sp_names[i], sp_ids[i], o->vocab_size);
            for (int j = 0; j < i; j++)
                if (sp_ids[i] >= 0 && sp_ids[i] == sp_ids[j])
                    return ta_err(err, TA_EINPUT, "tokenizer train: %s and %s share id %d",
                                  sp_names[j], sp_names[i], sp_ids[i]);
        }

        auto b = [](int v) { return std::string(v ? "true" : "false"); };
        char cov[64];
        snprintf(cov, sizeof cov, "%.17g", o->character_coverage);
        std::unordered_map<std::string, std::string> kw = {
            {"input", o->input},
            {"model_prefix", o->model_prefix},
            {"vocab_size", std::to_string(o->vocab_size)},
            {"model_type", type},
            {"byte_fallback", b(o->byte_fallback)},
            {"character_coverage", cov},
            {"normalization_rule_name", norm},
            {"remove_extra_whitespaces", b(o->remove_extra_whitespaces)},
            {"split_digits", b(o->split_digits)},
            {"unk_id", std::to_string(o->unk_id)},
            {"bos_id", std::to_string(o->bos_id)},
            {"eos_id", std::to_string(o->eos_id)},
            {"pad_id", std::to_string(o->pad_id)},
            {"num_threads", std::to_string(o->num_threads > 0 ? o->num_threads : 1)},
            {"input_sentence_size", "0"}, // read every line: no random sampling
            {"minloglevel", o->verbose ? "0" : "2"}, // 2 = errors only (stderr stays quiet)
        };
        if (o->user_defined_symbols && *o->user_defined_symbols)
            kw["user_defined_symbols"] = o->user_defined_symbols;
        sentencepiece::SetRandomGeneratorSeed(o->seed);
        auto st = sentencepiece::SentencePieceTrainer::Train(kw);
        if (!st.ok())
            return ta_err(err, TA_EINPUT, "%s: tokenizer training failed: %s", o->input,
                          st.ToString().c_str());
        return TA_OK;
    }
    TA_CATCH_ALL(err, o->input ? o->input : "tokenizer train")
}
