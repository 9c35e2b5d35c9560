/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* `hangtrace run [options] -- CMD [ARGS...]`: run a command, traced from its first Python line. */
#ifndef HT_RUN_H
#define HT_RUN_H

/* Exit statuses of hangtrace itself, as env(1), nice(1) and timeout(1) use them. */
#define RUN_EXIT_FAILED 125	/* hangtrace failed (usage, BPF, nothing to trace, report) */
#define RUN_EXIT_CANNOT_EXEC 126
#define RUN_EXIT_NOT_FOUND 127

/*
 * cmd_run - the `run` subcommand; @argv[0] is "run".  Returns the exit
 * status: the command's (128+N if signal N killed it), or one of the above.
 */
int cmd_run(int argc, char **argv);

#endif
