// CNI spec errors (SPEC.md "Error"): the well-known codes and a typed error that names the field it concerns.

/** The spec's well-known error codes this plugin uses. */
export const CNI_CODES = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  containerUnknown: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  pluginNotAvailable: 50,
  limitedConnectivity: 51,
  /** Plugin-specific (100+): CHECK found the kernel differs from the recorded plan. */
  drift: 100,
  /** Plugin-specific: CHECK of an attachment ADD never recorded. */
  unknownAttachment: 101,
} as const;

/** A failure the plugin reports as the spec's error object: `msg` starts with the field it concerns. */
export class CniSpecError extends Error {
  constructor(
    readonly code: number,
    readonly field: string,
    message: string,
    readonly details?: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'CniSpecError';
  }
}
