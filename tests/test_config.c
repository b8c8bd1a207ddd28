/* test_config.c — option table, command line, INI file, resolved text. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradguard/config.h"
#include "gradguard/error.h"
#include "gg_check.h"

static int parse(gg_config_t *c, const char *line) {
  char buf[4096], *argv[64];
  int argc = 0;
  snprintf(buf, sizeof buf, "train %s", line);
  for (char *tok = strtok(buf, " "); tok && argc < 63; tok = strtok(NULL, " ")) argv[argc++] = tok;
  argv[argc] = NULL;
  gg_config_defaults(c);
  FILE *devnull = fopen("/dev/null", "w");
  int rc = gg_config_parse_args(c, argc, argv, devnull);
  fclose(devnull);
  return rc;
}

static char *write_tmp(const char *text) {
  static char path[64];
  strcpy(path, "/tmp/gg_cfg_XXXXXX");
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return path;
}

START_TEST(defaults_follow_contract) {
  gg_config_t c;
  gg_config_defaults(&c);
  ck_assert_int_eq(c.activation, GG_ACT_RELU);
  ck_assert_int_eq(c.loss, GG_LOSS_MSE);
  ck_assert_int_eq(c.optimizer, GG_OPT_ADAM);
  ck_assert_double_eq(c.lr, 1e-3);
  ck_assert_double_eq(c.momentum, 0.9);
  ck_assert_double_eq(c.beta2, 0.999);
  ck_assert_double_eq(c.eps, 1e-8);
  ck_assert_int_eq(c.batch, 32);
  ck_assert_int_eq(c.epochs, 10);
  ck_assert_int_eq(c.ckpt_every, 1000);
  ck_assert_int_eq(c.keep, 3);
  ck_assert_int_eq(c.hist_every, 100);
  ck_assert_int_eq(c.nonfinite, GG_NONFINITE_SKIP);
  ck_assert_str_eq(c.resume, "none");
}
END_TEST

START_TEST(flags_parse) {
  gg_config_t c;
  ck_assert_int_eq(parse(&c, "--data d.h5 --layers 784,256,10 --activation tanh --loss softmax_ce "
                             "--optimizer sgd --lr 0.5 --batch 64 --clip-norm 1.5 --deterministic "
                             "--init normal:0.02 --lr-schedule step:10:0.5 --seed 7"), 0);
  ck_assert_str_eq(c.data, "d.h5");
  ck_assert_int_eq(c.n_widths, 3);
  ck_assert_int_eq(c.widths[1], 256);
  ck_assert_int_eq(c.activation, GG_ACT_TANH);
  ck_assert_int_eq(c.loss, GG_LOSS_SOFTMAX_CE);
  ck_assert_int_eq(c.optimizer, GG_OPT_SGD);
  ck_assert_double_eq(c.lr, 0.5);
  ck_assert_int_eq(c.batch, 64);
  ck_assert_double_eq(c.clip_norm, 1.5);
  ck_assert_int_eq(c.deterministic, 1);
  ck_assert_int_eq(c.init.kind, GG_INIT_NORMAL);
  ck_assert_double_eq(c.init.arg, 0.02);
  ck_assert_int_eq(c.schedule.kind, GG_SCHED_STEP);
  ck_assert_int_eq(c.schedule.every, 10);
  ck_assert_uint_eq(c.seed, 7);
}
END_TEST

START_TEST(bad_flags_are_usage_errors) {
  gg_config_t c;
  ck_assert_int_eq(parse(&c, "--bogus 1"), GG_EUSAGE);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), "--bogus"));
  ck_assert_int_eq(parse(&c, "--lr abc"), GG_EUSAGE);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), "--lr"));
  ck_assert_int_eq(parse(&c, "--batch 0"), GG_EUSAGE);
  ck_assert_int_eq(parse(&c, "--batch 2.5"), GG_EUSAGE);
  ck_assert_int_eq(parse(&c, "--layers 10"), GG_EUSAGE);
  ck_assert_int_eq(parse(&c, "--layers 10,0,2"), GG_EUSAGE);
  ck_assert_int_eq(parse(&c, "--activation swish"), GG_EUSAGE);
  ck_assert_int_eq(parse(&c, "--nonfinite ignore"), GG_EUSAGE);
  ck_assert_int_eq(parse(&c, "--clip-norm -1"), GG_EUSAGE);
  ck_assert_int_eq(parse(&c, "--autoclip 101"), GG_EUSAGE);
  ck_assert_int_eq(parse(&c, "--lr"), GG_EUSAGE);
  ck_assert_int_eq(parse(&c, "stray"), GG_EUSAGE);
  ck_assert_int_eq(gg_exit_code(GG_EUSAGE), 64);
}
END_TEST

START_TEST(finalize_requires_data_and_layers) {
  gg_config_t c;
  ck_assert_int_eq(parse(&c, "--layers 2,1"), 0);
  ck_assert_int_eq(gg_config_finalize(&c), GG_EUSAGE);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), "--data"));
  ck_assert_int_eq(parse(&c, "--data x.h5"), 0);
  ck_assert_int_eq(gg_config_finalize(&c), GG_EUSAGE);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), "--layers"));
  ck_assert_int_eq(parse(&c, "--data x.h5 --layers 2,1"), 0);
  ck_assert_int_eq(gg_config_finalize(&c), 0);
  ck_assert_ptr_nonnull(strstr(c.run_dir, "runs/"));
}
END_TEST

START_TEST(ini_file_and_command_line_wins) {
  char *path = write_tmp("; comment\n[train]\nlr = 0.25\nbatch = 16\nlayers = 4,3,2\nclip-value = 2\n");
  gg_config_t c;
  char line[256];
  snprintf(line, sizeof line, "--config %s --batch 8", path);
  ck_assert_int_eq(parse(&c, line), 0);
  ck_assert_double_eq(c.lr, 0.25);
  ck_assert_int_eq(c.batch, 8); /* the command line wins even though it comes after */
  ck_assert_int_eq(c.n_widths, 3);
  ck_assert_double_eq(c.clip_value, 2);
  snprintf(line, sizeof line, "--batch 8 --config %s", path);
  ck_assert_int_eq(parse(&c, line), 0);
  ck_assert_int_eq(c.batch, 8); /* ... and before */
  unlink(path);
}
END_TEST

START_TEST(ini_errors) {
  char *path = write_tmp("lr = 0.1\nnot-a-key = 3\n");
  gg_config_t c;
  gg_config_defaults(&c);
  ck_assert_int_eq(gg_config_load_ini(&c, path), GG_EUSAGE);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), "not-a-key"));
  unlink(path);
  path = write_tmp("lr = 0.1\nthis line has no equals sign\n");
  ck_assert_int_eq(gg_config_load_ini(&c, path), GG_EUSAGE);
  ck_assert_ptr_nonnull(strstr(gg_err_msg(GG_EUSAGE), ":2"));
  unlink(path);
  ck_assert_int_eq(gg_config_load_ini(&c, "/nonexistent/cfg.ini"), GG_ENOINPUT);
}
END_TEST

START_TEST(resolved_text_round_trips) {
  gg_config_t a, b;
  ck_assert_int_eq(parse(&a, "--data d.h5 --layers 5,4,3 --activation gelu --loss bce --lr 0.0123 "
                             "--agc 0.01 --init trunc_normal:0.5 --lr-schedule cosine "
                             "--warmup-steps 7 --nonfinite zero --seed 99"), 0);
  char text[65536];
  ck_assert_int_eq(gg_config_to_ini(&a, text, sizeof text), 0);
  char *path = write_tmp(text);
  gg_config_defaults(&b);
  ck_assert_int_eq(gg_config_load_ini(&b, path), 0);
  unlink(path);
  char text2[65536];
  ck_assert_int_eq(gg_config_to_ini(&b, text2, sizeof text2), 0);
  ck_assert_str_eq(text, text2);
  ck_assert_double_eq(b.lr, 0.0123);
  ck_assert_int_eq(b.schedule.kind, GG_SCHED_COSINE);
  ck_assert_int_eq(b.schedule.warmup_steps, 7);
  ck_assert_int_eq(b.nonfinite, GG_NONFINITE_ZERO);
}
END_TEST

START_TEST(help_lists_every_option) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  gg_config_usage(f);
  fclose(f);
  const char *must[] = {"--clip-norm", "--agc", "--autoclip", "--max-norm", "--nonfinite",
                        "--[no-]deterministic", "--verify-sync", "--resume", "[adam]"};
  for (size_t i = 0; i < sizeof must / sizeof *must; i++) ck_assert_ptr_nonnull(strstr(buf, must[i]));
  free(buf);
}
END_TEST

int main(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("config");
  tcase_add_test(tc, defaults_follow_contract);
  tcase_add_test(tc, flags_parse);
  tcase_add_test(tc, bad_flags_are_usage_errors);
  tcase_add_test(tc, finalize_requires_data_and_layers);
  tcase_add_test(tc, ini_file_and_command_line_wins);
  tcase_add_test(tc, ini_errors);
  tcase_add_test(tc, resolved_text_round_trips);
  tcase_add_test(tc, help_lists_every_option);
  suite_add_tcase(s, tc);
  return gg_check_run(s);
}
