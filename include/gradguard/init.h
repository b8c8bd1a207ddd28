/* init.h — weight initializers with torch.nn.init's conventions.
 *
 * For a weight W (out, in): fan_in = in, fan_out = out. gain =
 * torch.nn.init.calculate_gain(hidden activation) for every layer (relu and
 * gelu sqrt(2), leaky_relu sqrt(2/(1+0.01^2)), tanh 5/3, sigmoid and
 * identity 1), as in the usual `for m in modules: kaiming_uniform_(m.weight,
 * nonlinearity=act)`:
 *   kaiming_normal   N(0, std),  std   = gain / sqrt(fan_in)
 *   kaiming_uniform  U(-b, b),   b     = gain * sqrt(3 / fan_in)
 *   xavier_normal    N(0, std),  std   = gain * sqrt(2 / (fan_in + fan_out))
 *   xavier_uniform   U(-b, b),   b     = gain * sqrt(6 / (fan_in + fan_out))
 *   lecun_normal     N(0, std),  std   = 1 / sqrt(fan_in)
 *   orthogonal       gain * Q, Q from the QR of a (max, min) normal matrix
 *                    with sign(diag R) folded in (torch.nn.init.orthogonal_)
 *   normal:STD       N(0, STD)
 *   uniform:A        U(-A, A)
 *   trunc_normal:STD N(0, STD) cut at +-2 STD (inverse-CDF sampling)
 *   constant:V       V;  zeros: 0
 * Biases start at 0. Layer l draws from stream GG_STREAM_INIT(l) of --seed,
 * so the result is identical on every rank.
 */
#ifndef GRADGUARD_INIT_H
#define GRADGUARD_INIT_H

#include <stdint.h>

#include "gradguard/nn.h"

typedef enum {
  GG_INIT_DEFAULT, /* kaiming_uniform for relu-like, xavier_uniform otherwise */
  GG_INIT_KAIMING_NORMAL,
  GG_INIT_KAIMING_UNIFORM,
  GG_INIT_XAVIER_NORMAL,
  GG_INIT_XAVIER_UNIFORM,
  GG_INIT_LECUN_NORMAL,
  GG_INIT_ORTHOGONAL,
  GG_INIT_NORMAL,
  GG_INIT_UNIFORM,
  GG_INIT_TRUNC_NORMAL,
  GG_INIT_CONSTANT,
  GG_INIT_ZEROS,
  GG_INIT__COUNT
} gg_init_kind_t;

typedef struct {
  gg_init_kind_t kind;
  double arg; /* STD, A or V where the kind takes one */
} gg_init_t;

/* Parse "NAME" or "NAME:ARG" as in --init. Returns 0 or GG_EUSAGE (with a
 * message naming the bad part). */
int gg_init_parse(const char *spec, gg_init_t *out);
/* Back to "NAME[:ARG]" text (for the printed config). */
void gg_init_format(const gg_init_t *init, char *buf, size_t len);

/* calculate_gain of the activation. */
double gg_init_gain(gg_act_t act);

/* The initializer actually used with hidden activation act: GG_INIT_DEFAULT
 * becomes kaiming_uniform for relu, leaky_relu and gelu and xavier_uniform
 * otherwise; any other kind is returned unchanged. (For printing the
 * resolved config: gg_init_format of GG_INIT_DEFAULT gives "default", which
 * gg_init_parse does not accept.) */
gg_init_t gg_init_resolve(const gg_init_t *init, gg_act_t act);

/* Fill the flat buffer (arch->n_params floats). Returns 0, GG_ENOMEM, or
 * GG_EINTERNAL if LAPACK fails. */
int gg_init_params(const gg_arch_t *arch, const gg_init_t *init, uint64_t seed,
                   float *params);

#endif
