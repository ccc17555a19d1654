/* commands.h - the subcommands of `spirt`. Each returns the process exit
 * status, one scheme for all: 0 success; 2 bad usage - an unknown, malformed
 * or conflicting option, one that does not apply to the architecture, an
 * unwritable output path -, always found before any work starts; 1 anything
 * that fails after that (data errors, a server that died, a failed run). */
#ifndef SPIRT_COMMANDS_H
#define SPIRT_COMMANDS_H

int cmd_Train(int argc, char **argv);
int cmd_Compare(int argc, char **argv);
int cmd_Datagen(int argc, char **argv);

#endif
