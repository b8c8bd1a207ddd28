/* config.c — the option table and everything generated from it (see
 * config.h): setters, getopt_long, INI loading, --help and the resolved
 * configuration text. */
#include "gradguard/config.h"

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gradguard/error.h"

typedef enum {
  T_PATH, T_LONG, T_DOUBLE, T_U64, T_FLAG, T_LAYERS, T_ACT, T_LOSS, T_INIT,
  T_OPT, T_SCHED, T_WARMUP, T_NONFINITE, T_VERBOSITY, T_SHARD
} gg__opt_type_t;

typedef struct {
  const char *name;   /* long flag without "--" = INI key */
  gg__opt_type_t type;
  size_t offset;      /* field in gg_config_t */
  double lo, hi;      /* allowed range for numbers (inclusive) */
  const char *help;
} gg__opt_t;

#define OFF(f) offsetof(gg_config_t, f)
#define NOLIM -HUGE_VAL, HUGE_VAL
static const gg__opt_t gg__opts[] = {
  {"data", T_PATH, OFF(data), NOLIM, "training set (HDF5: /X float32 [N,D], /y)"},
  {"val-data", T_PATH, OFF(val_data), NOLIM, "held-out set, evaluated after each epoch"},
  {"layers", T_LAYERS, OFF(widths), NOLIM, "widths D,H1,...,K from input to output"},
  {"activation", T_ACT, OFF(activation), NOLIM, "relu|leaky_relu|tanh|sigmoid|gelu|identity"},
  {"loss", T_LOSS, OFF(loss), NOLIM, "mse|bce|softmax_ce"},
  {"init", T_INIT, OFF(init), NOLIM, "initializer NAME[:ARG] (default: kaiming_uniform for relu-like, else xavier_uniform)"},
  {"init-from", T_PATH, OFF(init_from), NOLIM, "start from the weights of a checkpoint"},
  {"optimizer", T_OPT, OFF(optimizer), NOLIM, "sgd|momentum|nesterov|adam|adamw"},
  {"lr", T_DOUBLE, OFF(lr), 0, HUGE_VAL, "learning rate"},
  {"momentum", T_DOUBLE, OFF(momentum), 0, 1, "momentum (momentum, nesterov)"},
  {"beta1", T_DOUBLE, OFF(beta1), 0, 0.9999999, "Adam beta1"},
  {"beta2", T_DOUBLE, OFF(beta2), 0, 0.9999999, "Adam beta2"},
  {"eps", T_DOUBLE, OFF(eps), 0, HUGE_VAL, "Adam epsilon"},
  {"weight-decay", T_DOUBLE, OFF(weight_decay), 0, HUGE_VAL, "weight decay (L2 for sgd/adam, decoupled for adamw)"},
  {"lr-schedule", T_SCHED, OFF(schedule), NOLIM, "constant|cosine|step:EVERY:GAMMA"},
  {"warmup-steps", T_WARMUP, OFF(schedule), 0, 1e15, "linear warmup steps of the cosine schedule"},
  {"batch", T_LONG, OFF(batch), 1, 1e9, "GLOBAL batch size (summed over all ranks)"},
  {"epochs", T_LONG, OFF(epochs), 1, 1e9, "epochs to train"},
  {"steps", T_LONG, OFF(steps), 0, 1e15, "optimizer steps to train (wins over --epochs; 0 = use epochs)"},
  {"seed", T_U64, OFF(seed), NOLIM, "seed of init, shuffling and everything random"},
  {"clip-norm", T_DOUBLE, OFF(clip_norm), 0, HUGE_VAL, "global L2-norm clipping threshold (0 = off)"},
  {"clip-value", T_DOUBLE, OFF(clip_value), 0, HUGE_VAL, "per-value clipping to [-C,C] (0 = off)"},
  {"clip-layer-norm", T_DOUBLE, OFF(clip_layer_norm), 0, HUGE_VAL, "per-tensor L2-norm clipping (0 = off)"},
  {"agc", T_DOUBLE, OFF(agc), 0, HUGE_VAL, "adaptive gradient clipping lambda (0 = off)"},
  {"autoclip", T_DOUBLE, OFF(autoclip), 0, 100, "clip the global norm at this percentile of past norms (0 = off)"},
  {"weight-clip", T_DOUBLE, OFF(weight_clip), 0, HUGE_VAL, "clamp weights to [-C,C] after each update (0 = off)"},
  {"max-norm", T_DOUBLE, OFF(max_norm), 0, HUGE_VAL, "max L2 norm of each unit's incoming weights (0 = off)"},
  {"nonfinite", T_NONFINITE, OFF(nonfinite), NOLIM, "NaN/Inf gradient: skip|zero|abort"},
  {"run-dir", T_PATH, OFF(run_dir), NOLIM, "output folder (default runs/<timestamp>)"},
  {"ckpt-every", T_LONG, OFF(ckpt_every), 1, 1e15, "checkpoint every N steps (and at the end)"},
  {"keep", T_LONG, OFF(keep), 1, 1e9, "keep the newest K checkpoints"},
  {"resume", T_PATH, OFF(resume), NOLIM, "auto|PATH|none"},
  {"stats-every", T_LONG, OFF(stats_every), 1, 1e15, "record gradient statistics every N steps"},
  {"hist-every", T_LONG, OFF(hist_every), 1, 1e15, "record gradient histograms every N steps"},
  {"print-stats", T_LONG, OFF(print_stats), 0, 1e15, "print a per-layer statistics table every N steps (0 = off)"},
  {"deterministic", T_FLAG, OFF(deterministic), NOLIM, "bitwise-identical results for any power-of-two rank count"},
  {"threads", T_LONG, OFF(threads), 0, 4096, "BLAS threads per rank (0 = cores of the node / ranks on it)"},
  {"shard-update", T_SHARD, OFF(shard_update), NOLIM, "split the optimizer update over the ranks: auto|on|off (auto: on for >= 65536 parameters on 2+ ranks, off with --deterministic)"},
  {"verify-sync", T_LONG, OFF(verify_sync), 0, 1e15, "check every N steps that all ranks hold identical weights (0 = off)"},
  {"verbosity", T_VERBOSITY, OFF(verbosity), 0, 2, "0 quiet, 1 normal, 2 verbose (-q, -v)"},
  {"flush-denormals", T_FLAG, OFF(flush_denormals), NOLIM, "treat subnormal floats (< 1.2e-38) as 0: avoids 10x slow steps once gradients underflow"},
  {"progress-every", T_DOUBLE, OFF(progress_every), 0.1, 1e9, "seconds between progress lines when not on a terminal"},
};
#define GG__N_OPTS (sizeof gg__opts / sizeof gg__opts[0])

void gg_config_defaults(gg_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->activation = GG_ACT_RELU;
  cfg->loss = GG_LOSS_MSE;
  cfg->init.kind = GG_INIT_DEFAULT;
  cfg->optimizer = GG_OPT_ADAM;
  cfg->lr = 1e-3;
  cfg->momentum = 0.9;
  cfg->beta1 = 0.9;
  cfg->beta2 = 0.999;
  cfg->eps = 1e-8;
  cfg->schedule.kind = GG_SCHED_CONSTANT;
  cfg->batch = 32;
  cfg->epochs = 10;
  cfg->nonfinite = GG_NONFINITE_SKIP;
  cfg->ckpt_every = 1000;
  cfg->keep = 3;
  strcpy(cfg->resume, "none");
  cfg->stats_every = 1;
  cfg->hist_every = 100;
  cfg->verbosity = 1;
  cfg->progress_every = 5.0;
  cfg->flush_denormals = 1;
}

static const gg__opt_t *gg__find(const char *key) {
  for (size_t i = 0; i < GG__N_OPTS; i++)
    if (strcmp(gg__opts[i].name, key) == 0) return &gg__opts[i];
  return NULL;
}

/* Whole-string number parsing: trailing garbage, overflow and NaN are errors. */
static int gg__parse_double(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != 0 || errno == ERANGE || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

static int gg__parse_flag(const char *s, int *out) {
  static const char *yes[] = {"", "1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
    if (strcasecmp(s, yes[i]) == 0) return *out = 1, 0;
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    if (strcasecmp(s, no[i]) == 0) return *out = 0, 0;
  return -1;
}

static int gg__parse_layers(gg_config_t *cfg, const char *s) {
  int n = 0;
  const char *p = s;
  while (*p) {
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 1 << 24 || errno) return -1;
    if (n == GG_MAX_WIDTHS) return -1;
    cfg->widths[n++] = (int)v;
    if (*end == ',') end++;
    else if (*end) return -1;
    p = end;
  }
  if (n < 2) return -1;
  cfg->n_widths = n;
  return 0;
}

/* Does s hold a control character other than a tab (a newline would break
 * the one-line error messages that quote it, and the `key = value` lines of
 * the resolved configuration)? */
static int gg__has_control(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if ((*p < 0x20 && *p != '\t') || *p == 0x7f) return 1;
  return 0;
}

/* s for an error message: control characters (a newline would make the
 * one-line message two) shown as '?', cut to fit buf. */
static const char *gg__printable(const char *s, char *buf, size_t len) {
  size_t i = 0;
  for (; s[i] && i + 1 < len; i++) buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
  buf[i] = 0;
  return buf;
}

/* A path is stored verbatim and printed in the resolved configuration,
 * which README promises can be passed back with --config: libinih would
 * read surrounding blanks away and cut the value at an inline comment
 * (" ;", or ';' first), so such a path would come back as another one. */
static int gg__path_round_trips(const char *s) {
  size_t n = strlen(s);
  if (n && (s[0] == ' ' || s[0] == '\t' || s[0] == ';' || s[n - 1] == ' ' || s[n - 1] == '\t'))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (s[i] == ';' && (s[i - 1] == ' ' || s[i - 1] == '\t')) return 0;
  return 1;
}

int gg_config_set(gg_config_t *cfg, const char *key, const char *value) {
  if (gg__has_control(key)) return gg_err_set(GG_EUSAGE, "an option name contains a control character");
  const gg__opt_t *o = gg__find(key);
  if (!o) return gg_err_set(GG_EUSAGE, "unknown option --%s (see gradguard train --help)", key);
  if (!value) value = "";
  if (gg__has_control(value))
    return gg_err_set(GG_EUSAGE, "--%s: the value contains a control character (a newline?)", key);
  void *field = (char *)cfg + o->offset;
  double d;
  int k;
  switch (o->type) {
  case T_PATH:
    if (strlen(value) >= GG_PATH_MAX) return gg_err_set(GG_EUSAGE, "--%s: path too long", key);
    if (!gg__path_round_trips(value))
      return gg_err_set(GG_EUSAGE, "--%s: '%s' starts or ends with a blank, starts with ';' or holds \" ;\" (not kept in INI text)", key, value);
    strcpy((char *)field, value);
    return 0;
  case T_LONG:
  case T_DOUBLE:
    if (strcasecmp(value, "off") == 0 && o->lo == 0) value = "0";
    if (gg__parse_double(value, &d))
      return gg_err_set(GG_EUSAGE, "--%s: '%s' is not a number", key, value);
    if (d < o->lo || d > o->hi)
      return gg_err_set(GG_EUSAGE, "--%s: %s is out of range [%g, %g]", key, value, o->lo, o->hi);
    if (o->type == T_LONG) {
      if (d != floor(d)) return gg_err_set(GG_EUSAGE, "--%s: '%s' is not a whole number", key, value);
      *(long *)field = (long)d;
    } else {
      *(double *)field = d;
    }
    return 0;
  case T_U64: {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 0);
    /* digits first: strtoull would skip blanks and wrap " -1" to 2^64 - 1 */
    if (end == value || *end || errno || value[0] < '0' || value[0] > '9')
      return gg_err_set(GG_EUSAGE, "--%s: '%s' is not a non-negative integer", key, value);
    *(uint64_t *)field = (uint64_t)v;
    return 0;
  }
  case T_FLAG:
    if (gg__parse_flag(value, &k)) return gg_err_set(GG_EUSAGE, "--%s: '%s' is not true/false", key, value);
    *(int *)field = k;
    return 0;
  case T_VERBOSITY:
    if (gg__parse_double(value, &d) || d < 0 || d > 2 || d != floor(d))
      return gg_err_set(GG_EUSAGE, "--%s: '%s' is not 0, 1 or 2", key, value);
    *(int *)field = (int)d;
    return 0;
  case T_LAYERS:
    if (gg__parse_layers(cfg, value))
      return gg_err_set(GG_EUSAGE, "--layers: '%s' is not a list of at least two positive widths like 784,256,10", value);
    return 0;
  case T_ACT:
    if ((k = gg_act_parse(value)) < 0)
      return gg_err_set(GG_EUSAGE, "--activation: unknown '%s' (relu, leaky_relu, tanh, sigmoid, gelu, identity)", value);
    *(gg_act_t *)field = (gg_act_t)k;
    return 0;
  case T_LOSS:
    if ((k = gg_loss_parse(value)) < 0)
      return gg_err_set(GG_EUSAGE, "--loss: unknown '%s' (mse, bce, softmax_ce)", value);
    *(gg_loss_t *)field = (gg_loss_t)k;
    return 0;
  case T_INIT:
    if (strcmp(value, "default") == 0) {
      cfg->init.kind = GG_INIT_DEFAULT;
      cfg->init.arg = 0;
      return 0;
    }
    return gg_init_parse(value, &cfg->init);
  case T_OPT:
    if ((k = gg_opt_parse(value)) < 0)
      return gg_err_set(GG_EUSAGE, "--optimizer: unknown '%s' (sgd, momentum, nesterov, adam, adamw)", value);
    *(gg_opt_kind_t *)field = (gg_opt_kind_t)k;
    return 0;
  case T_SCHED: {
    long warm = cfg->schedule.warmup_steps;
    int rc = gg_sched_parse(value, &cfg->schedule);
    cfg->schedule.warmup_steps = warm;
    return rc;
  }
  case T_WARMUP:
    /* the table's upper bound keeps the cast to long defined */
    if (gg__parse_double(value, &d) || d < 0 || d > o->hi || d != floor(d))
      return gg_err_set(GG_EUSAGE, "--warmup-steps: '%s' is not a whole number in [0, %g]", value, o->hi);
    cfg->schedule.warmup_steps = (long)d;
    return 0;
  case T_NONFINITE:
    if (strcmp(value, "skip") == 0) cfg->nonfinite = GG_NONFINITE_SKIP;
    else if (strcmp(value, "zero") == 0) cfg->nonfinite = GG_NONFINITE_ZERO;
    else if (strcmp(value, "abort") == 0) cfg->nonfinite = GG_NONFINITE_ABORT;
    else return gg_err_set(GG_EUSAGE, "--nonfinite: unknown '%s' (skip, zero, abort)", value);
    return 0;
  case T_SHARD:
    if (strcmp(value, "auto") == 0) cfg->shard_update = GG_SHARD_AUTO;
    else if (strcmp(value, "on") == 0) cfg->shard_update = GG_SHARD_ON;
    else if (strcmp(value, "off") == 0) cfg->shard_update = GG_SHARD_OFF;
    else return gg_err_set(GG_EUSAGE, "--shard-update: unknown '%s' (auto, on, off)", value);
    return 0;
  }
  return gg_err_set(GG_EINTERNAL, "--%s: unhandled option type", key);
}

typedef struct {
  gg_config_t *cfg;
  const char *path;
  int rc;
} gg__ini_ctx_t;

static int gg__ini_handler(void *user, const char *section, const char *name, const char *value) {
  gg__ini_ctx_t *ctx = user;
  (void)section; /* sections only group keys for the reader */
  if (ctx->rc) return 0;
  if (strcmp(name, "config") == 0) {
    ctx->rc = gg_err_set(GG_EUSAGE, "%s: 'config' cannot be set inside a config file", ctx->path);
    return 0;
  }
  int rc = gg_config_set(ctx->cfg, name, value);
  if (rc) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", gg_err_msg(rc));
    ctx->rc = gg_err_set(rc, "%s: %s", ctx->path, msg);
    return 0;
  }
  return 1;
}

/* Debian's libinih is built with INI_MAX_LINE 200: it reads a longer line
 * in pieces, handing the first piece over as a cut value and parsing the
 * rest as lines of their own, and it reads a NUL byte as the end of the
 * line. It checks neither, nor read errors (a directory reads as an empty
 * file), so the file is read and checked here and then parsed from memory
 * (which also works for a pipe, e.g. --config <(...)). */
#define GG__INI_MAX_LINE 200
#define GG__INI_MAX_BYTES (1 << 20)

static int gg__ini_read(FILE *f, const char *path, char **text) {
  char *line = NULL, *buf = NULL;
  size_t cap = 0, used = 0;
  ssize_t len;
  int rc = 0;
  for (long lineno = 1; rc == 0 && (errno = 0, len = getline(&line, &cap, f)) >= 0; lineno++) {
    size_t n = (size_t)len;
    if (strlen(line) != n)
      rc = gg_err_set(GG_EUSAGE, "%s:%ld: NUL byte in the line (not a text file)", path, lineno);
    else if (n - (n && line[n - 1] == '\n') > GG__INI_MAX_LINE - 2)
      rc = gg_err_set(GG_EUSAGE, "%s:%ld: line longer than %d characters", path, lineno,
                      GG__INI_MAX_LINE - 2);
    else if (used + n > GG__INI_MAX_BYTES)
      rc = gg_err_set(GG_EUSAGE, "%s: larger than %d bytes; not a config file", path, GG__INI_MAX_BYTES);
    else {
      char *grown = realloc(buf, used + n + 1);
      if (!grown) {
        rc = gg_err_set(GG_ENOMEM, "%s: out of memory", path);
        break;
      }
      buf = grown;
      memcpy(buf + used, line, n + 1);
      used += n;
    }
  }
  if (rc == 0 && ferror(f))
    rc = gg_err_set(GG_ENOINPUT, "%s: cannot read config file: %s", path, strerror(errno));
  free(line);
  if (rc) {
    free(buf);
    return rc;
  }
  *text = buf ? buf : strdup("");
  return *text ? 0 : gg_err_set(GG_ENOMEM, "%s: out of memory", path);
}

int gg_config_load_ini(gg_config_t *cfg, const char *file) {
  char shown[512];
  const char *path = gg__printable(file, shown, sizeof shown); /* for messages */
  FILE *f = fopen(file, "r");
  if (!f) return gg_err_set(GG_ENOINPUT, "%s: cannot open config file: %s", path, strerror(errno));
  char *text = NULL;
  int rc = gg__ini_read(f, path, &text);
  fclose(f);
  if (rc) return rc;
  gg__ini_ctx_t ctx = {cfg, path, 0};
  int line = ini_parse_string(text, gg__ini_handler, &ctx);
  free(text);
  if (ctx.rc) return ctx.rc;
  if (line > 0) return gg_err_set(GG_EUSAGE, "%s:%d: not a 'key = value' line", path, line);
  if (line < 0) return gg_err_set(GG_EIO, "%s: cannot read config file", path);
  return 0;
}

void gg_config_usage(FILE *out) {
  fprintf(out,
          "usage: gradguard train --data FILE --layers D,H,...,K [options]\n"
          "       (mpirun -n P gradguard train ... for P data-parallel ranks)\n\n"
          "  --config FILE            read `key = value` options from an INI file (flags win)\n"
          "  -q, --quiet / -v, --verbose   less / more output\n"
          "  -h, --help               this help\n");
  gg_config_t def;
  gg_config_defaults(&def);
  char text[65536];
  gg_config_to_ini(&def, text, sizeof text);
  for (size_t i = 0; i < GG__N_OPTS; i++) {
    const gg__opt_t *o = &gg__opts[i];
    /* the default is the value in the resolved text of the defaults */
    const char *dflt = "";
    size_t klen = strlen(o->name);
    char val[128] = "";
    for (char *p = text; p && *p;) {
      char *nl = strchr(p, '\n');
      if (strncmp(p, o->name, klen) == 0 && strncmp(p + klen, " = ", 3) == 0) {
        size_t n = (size_t)((nl ? nl : p + strlen(p)) - (p + klen + 3));
        if (n >= sizeof val) n = sizeof val - 1;
        memcpy(val, p + klen + 3, n);
        val[n] = 0;
        dflt = val;
        break;
      }
      p = nl ? nl + 1 : NULL;
    }
    char flag[64];
    snprintf(flag, sizeof flag, "--%s%s", o->type == T_FLAG ? "[no-]" : "", o->name);
    if (o->type != T_FLAG) snprintf(flag, sizeof flag, "--%s X", o->name);
    fprintf(out, "  %-24s %s%s%s%s\n", flag, o->help, dflt[0] ? " [" : "", dflt, dflt[0] ? "]" : "");
  }
}

int gg_config_parse_args(gg_config_t *cfg, int argc, char **argv, FILE *out) {
  /* --config first, so that every other flag wins over the file. */
  for (int i = 1; i < argc; i++) {
    const char *path = NULL;
    if (strcmp(argv[i], "--config") == 0) {
      if (i + 1 >= argc) return gg_err_set(GG_EUSAGE, "--config needs a file");
      path = argv[i + 1];
    } else if (strncmp(argv[i], "--config=", 9) == 0) {
      path = argv[i] + 9;
    } else if (strcmp(argv[i], "--") == 0) {
      break;
    }
    if (path) {
      int rc = gg_config_load_ini(cfg, path);
      if (rc) return rc;
    }
  }
  /* every flag also as --no-NAME (codes 2000 + index) */
  static char no_names[GG__N_OPTS][48];
  struct option lopts[2 * GG__N_OPTS + 5];
  size_t n = 0;
  for (size_t i = 0; i < GG__N_OPTS; i++) {
    lopts[n++] = (struct option){gg__opts[i].name,
                                 gg__opts[i].type == T_FLAG ? optional_argument : required_argument,
                                 NULL, 1000 + (int)i};
    if (gg__opts[i].type == T_FLAG) {
      snprintf(no_names[i], sizeof no_names[i], "no-%s", gg__opts[i].name);
      lopts[n++] = (struct option){no_names[i], no_argument, NULL, 2000 + (int)i};
    }
  }
  lopts[n++] = (struct option){"config", required_argument, NULL, 'c'};
  lopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
  lopts[n++] = (struct option){"quiet", no_argument, NULL, 'q'};
  lopts[n++] = (struct option){"verbose", no_argument, NULL, 'v'};
  lopts[n] = (struct option){0, 0, 0, 0};
  optind = 0; /* glibc: full re-initialization, so tests can parse repeatedly */
  opterr = 0;
  int c;
  char shown[256]; /* an argument quoted in a message */
  while ((c = getopt_long(argc, argv, "+hqv", lopts, NULL)) != -1) {
    if (c == 'h') {
      gg_config_usage(out);
      return 1;
    } else if (c == 'q') {
      cfg->verbosity = 0;
    } else if (c == 'v') {
      cfg->verbosity = 2;
    } else if (c == 'c') {
      /* Loaded above, where only the full spelling is looked for: an
       * abbreviation getopt_long accepts (--conf FILE) would be ignored. */
      const char *flag = optarg == argv[optind - 1] ? argv[optind - 2] : argv[optind - 1];
      if (strcmp(flag, "--config") != 0 && strncmp(flag, "--config=", 9) != 0)
        return gg_err_set(GG_EUSAGE, "%s: write --config in full", gg__printable(flag, shown, sizeof shown));
      continue;
    } else if (c >= 2000) {
      int rc = gg_config_set(cfg, gg__opts[c - 2000].name, "false");
      if (rc) return rc;
    } else if (c >= 1000) {
      int rc = gg_config_set(cfg, gg__opts[c - 1000].name, optarg);
      if (rc) return rc;
    } else if (c == ':' || (c == '?' && optopt >= 1000)) {
      return gg_err_set(GG_EUSAGE, "%s needs a value", gg__printable(argv[optind - 1], shown, sizeof shown));
    } else {
      const char *bad = gg__printable(argv[optind - 1], shown, sizeof shown);
      return gg_err_set(GG_EUSAGE, "unknown option %s (see gradguard train --help)", bad);
    }
  }
  if (optind < argc)
    return gg_err_set(GG_EUSAGE, "unexpected argument '%s'", gg__printable(argv[optind], shown, sizeof shown));
  return 0;
}

int gg_config_finalize(gg_config_t *cfg) {
  if (!cfg->data[0]) return gg_err_set(GG_EUSAGE, "--data is required (an HDF5 file with /X and /y)");
  if (cfg->n_widths < 2) return gg_err_set(GG_EUSAGE, "--layers is required, e.g. --layers 784,256,10");
  if (cfg->lr <= 0) return gg_err_set(GG_EUSAGE, "--lr must be positive");
  if (cfg->eps <= 0) return gg_err_set(GG_EUSAGE, "--eps must be positive");
  if (cfg->autoclip > 0 && cfg->clip_norm > 0)
    return gg_err_set(GG_EUSAGE, "--autoclip and --clip-norm both set the global-norm threshold: give one");
  if (strcmp(cfg->resume, "none") && strcmp(cfg->resume, "auto") && !cfg->resume[0])
    return gg_err_set(GG_EUSAGE, "--resume: give auto, none or a checkpoint path");
  if (!cfg->resume[0]) strcpy(cfg->resume, "none");
  if (!cfg->run_dir[0]) {
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(cfg->run_dir, sizeof cfg->run_dir, "runs/%Y%m%d-%H%M%S", &tm);
  }
  return 0;
}

/* Append printf text to buf at *pos, failing when it does not fit. */
static int gg__cat(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int gg__cat(char *buf, size_t len, size_t *pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *pos, *pos < len ? len - *pos : 0, fmt, ap);
  va_end(ap);
  if (n < 0 || *pos + (size_t)n >= len) return -1;
  *pos += (size_t)n;
  return 0;
}

int gg_config_to_ini(const gg_config_t *cfg, char *buf, size_t len) {
  size_t pos = 0;
  int bad = 0;
  if (len) buf[0] = 0;
  for (size_t i = 0; i < GG__N_OPTS; i++) {
    const gg__opt_t *o = &gg__opts[i];
    const void *field = (const char *)cfg + o->offset;
    char v[GG_PATH_MAX + 64];
    switch (o->type) {
    case T_PATH: snprintf(v, sizeof v, "%s", (const char *)field); break;
    case T_LONG: snprintf(v, sizeof v, "%ld", *(const long *)field); break;
    case T_DOUBLE: {
      /* shortest text that reads back to the same double */
      double d = *(const double *)field;
      for (int prec = 6; prec <= 17; prec++) {
        snprintf(v, sizeof v, "%.*g", prec, d);
        if (strtod(v, NULL) == d) break;
      }
      break;
    }
    case T_U64: snprintf(v, sizeof v, "%llu", (unsigned long long)*(const uint64_t *)field); break;
    case T_FLAG: snprintf(v, sizeof v, "%s", *(const int *)field ? "true" : "false"); break;
    case T_VERBOSITY: snprintf(v, sizeof v, "%d", *(const int *)field); break;
    case T_LAYERS: {
      size_t p = 0;
      v[0] = 0;
      for (int k = 0; k < cfg->n_widths && p < sizeof v - 16; k++)
        p += (size_t)snprintf(v + p, sizeof v - p, "%s%d", k ? "," : "", cfg->widths[k]);
      break;
    }
    case T_ACT: snprintf(v, sizeof v, "%s", gg_act_name(cfg->activation)); break;
    case T_LOSS: snprintf(v, sizeof v, "%s", gg_loss_name(cfg->loss)); break;
    case T_INIT:
      if (cfg->init.kind == GG_INIT_DEFAULT) snprintf(v, sizeof v, "default");
      else gg_init_format(&cfg->init, v, sizeof v);
      break;
    case T_OPT: snprintf(v, sizeof v, "%s", gg_opt_name(cfg->optimizer)); break;
    case T_SCHED: gg_sched_format(&cfg->schedule, v, sizeof v); break;
    case T_WARMUP: snprintf(v, sizeof v, "%ld", cfg->schedule.warmup_steps); break;
    case T_NONFINITE:
      snprintf(v, sizeof v, "%s", cfg->nonfinite == GG_NONFINITE_SKIP ? "skip"
                                  : cfg->nonfinite == GG_NONFINITE_ZERO ? "zero" : "abort");
      break;
    case T_SHARD:
      snprintf(v, sizeof v, "%s", cfg->shard_update == GG_SHARD_ON    ? "on"
                                  : cfg->shard_update == GG_SHARD_OFF ? "off" : "auto");
      break;
    }
    bad |= gg__cat(buf, len, &pos, "%s = %s\n", o->name, v);
  }
  return bad ? gg_err_set(GG_EINTERNAL, "configuration text does not fit %zu bytes", len) : 0;
}
