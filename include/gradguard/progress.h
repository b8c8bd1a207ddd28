/* progress.h — rank 0's progress display: redrawn in place on a terminal,
 * a plain line every few seconds otherwise (Slurm logs). Not collective;
 * call it on every rank, it prints on rank 0 only (through log.h). */
#ifndef GRADGUARD_PROGRESS_H
#define GRADGUARD_PROGRESS_H

typedef struct {
  int tty;             /* stdout is a terminal */
  int active;          /* an in-place line is on screen */
  double t_start;      /* clock at the first step */
  double t_last;       /* clock of the last print */
  long step_last;      /* step at the last print */
  double every;        /* seconds between plain lines */
  long total;          /* steps of the run */
  long step0;          /* steps done before this process started */
} gg_progress_t;

double gg_now(void); /* monotonic seconds */

void gg_progress_init(gg_progress_t *p, long step0, long total, double every);
/* Maybe print: step done, epoch (1-based) of n_epochs, loss, raw norm,
 * clip coefficient, batch size (for samples/s). force prints now. */
void gg_progress_update(gg_progress_t *p, long step, long epoch, long n_epochs, double loss,
                        double grad_norm, double clip_coef, long batch, int force);
/* Print a full line, first ending any in-place line. */
void gg_progress_line(gg_progress_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
