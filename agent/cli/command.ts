// The shape of one subcommand module (agent/cli/cmd-<name>.ts), so cli.ts and the commands do not import each other.

/** One subcommand, exported by its own module agent/cli/cmd-<name>.ts and listed in COMMANDS in cli.ts. */
export interface Command {
  /** The full text of `help <name>` / `<name> --help`. */
  readonly usage: string;
  /**
   * Runs with the arguments after the subcommand name and resolves to the exit status.
   * Throws AgentError for anything the user can fix; node:util parseArgs errors are reported as usage errors.
   */
  run(args: readonly string[]): Promise<number>;
}
