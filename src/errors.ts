/**
 * Typed errors with stable codes. Every error says what went wrong and, where it can, what to do;
 * the original error is kept as `cause`.
 */
export class RolecastError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** One problem found in the profiles, located as file:line:col and a dotted path. */
export interface ProfileIssue {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
}

export function formatIssue(i: ProfileIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.path}: ${i.message}`;
}

/** Thrown by the inventory loader with every problem found, never just the first. */
export class ProfileError extends RolecastError {
  readonly issues: readonly ProfileIssue[];
  constructor(issues: readonly ProfileIssue[]) {
    super('E_PROFILE', `profiles are invalid (${issues.length} error${issues.length === 1 ? '' : 's'}):\n` +
      issues.map(formatIssue).join('\n'));
    this.issues = issues;
  }
}

/** A renderer was asked for something the inventory does not provide: never render "undefined". */
export class RenderError extends RolecastError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_RENDER', message, options);
  }
}
