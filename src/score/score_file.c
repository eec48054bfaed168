/* score_file.c — `tinyalign score` as a library call (score.h: score_file_run). */
#include "score_impl.h"

int score_file_run(const ScoreFileOptions *o, ScoreSummary *sum, TaError *err) {
    (void)o, (void)sum;
    return ta_err(err, TA_ERUNTIME, "not implemented yet");
}
