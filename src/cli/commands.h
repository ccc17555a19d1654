/* commands.h - the subcommands of `spirt`. Each returns the process exit
 * status: 0 success, 1 the run failed, 2 bad usage. */
#ifndef SPIRT_COMMANDS_H
#define SPIRT_COMMANDS_H

int cmd_Train(int argc, char **argv);
int cmd_Compare(int argc, char **argv);

#endif
