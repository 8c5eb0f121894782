/* The command's signal handling: Ctrl-C and friends, and crashes. The
 * library installs no handler (study.h); these are the program's. */
#ifndef BSC_CLI_SIGNALS_H
#define BSC_CLI_SIGNALS_H

/* SIGSEGV/SIGBUS: says on stderr which plugin, type and op was running
 * (bsc_plugin_call_current), marks the running study's manifest "crashed"
 * (bsc_study_mark_crashed), removes tracked temporaries, then dies of the
 * signal itself (status 139 for SIGSEGV in the shell; a core dump where
 * enabled). Installed for every command. */
void cli_catch_crashes(void);

/* For `batchscope run`: the first SIGINT, SIGTERM or SIGHUP asks the study
 * to stop (cli_stop_requested, polled by the library), which ends it
 * "interrupted" with what it finished kept for --resume; a second one
 * removes the temporaries being written and ends the process at once. */
void cli_catch_stop(void);
int cli_stop_requested(void *user);

/* For `batchscope report`: SIGINT, SIGTERM or SIGHUP removes the
 * temporaries being written (a figure half drawn) and ends the process. */
void cli_catch_abort(void);

#endif
