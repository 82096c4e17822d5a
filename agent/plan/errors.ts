// Typed errors: every failure names the field (or file) it concerns and prints as one line.

export class AgentError extends Error {
  constructor(
    readonly field: string,
    message: string,
    readonly exitCode: number = 1,
  ) {
    super(message);
    this.name = 'AgentError';
  }

  /** One line for the terminal: "<field>: <message>". */
  oneLine(): string {
    return `${this.field}: ${this.message}`.replace(/\s*\n\s*/g, ' ');
  }
}

/** Bad command-line usage or unreadable input. */
export class InputError extends AgentError {
  constructor(field: string, message: string) {
    super(field, message, 2);
    this.name = 'InputError';
  }
}

/** The pod state cannot satisfy the VMI (missing interface, CIDR too small, no gateway). */
export class PlanError extends AgentError {
  constructor(field: string, message: string) {
    super(field, message, 3);
    this.name = 'PlanError';
  }
}
