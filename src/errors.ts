/**
 * The one error catalogue: every code rolecast uses, with its HTTP status, what it means, what to do
 * and the CLI exit code. Handlers throw RolecastError with a code from here; one fastify error handler
 * (src/http/errors.ts) and the CLI serialise it. docs/errors.md lists the same table (a test checks).
 * Exit codes: 2 a usage error (the command line is wrong), 3 a BMC failed or did not answer, 1 anything else that failed. HTTP: 4xx the request or the inventory says no; 500 we broke (never a 404 for that).
 */
export interface ErrorSpec {
  status: number;
  /** What it means, in a few words. */
  meaning: string;
  /** What to do about it. */
  fix: string;
  exit: 1 | 2 | 3;
}

const spec = (status: number, exit: 1 | 2 | 3, meaning: string, fix: string): ErrorSpec => ({ status, exit, meaning, fix });

export const ERRORS = {
  E_USAGE: spec(400, 2, 'the command or request is malformed', 'see `rolecast help <command>` or the API schema at /api/openapi.json'),
  E_BAD_REQUEST: spec(400, 1, 'the request failed validation', 'fix the field named in the message'),
  E_BAD_MAC: spec(400, 1, 'not a MAC address', 'write it as aa:bb:cc:dd:ee:ff'),
  E_UNAUTHORISED: spec(401, 1, 'no valid token', 'send Authorization: Bearer <token> (server config http.tokens / http.token)'),
  E_NO_TOKEN: spec(403, 1, 'mutating routes are off', 'set http.token (or http.tokens.admin) in the server config'),
  E_FORBIDDEN: spec(403, 1, 'the token may not do this', 'use an admin token'),
  E_SECRET: spec(403, 1, 'secret files go only to their machine', 'fetch from the machine\'s own (reserved or leased) address'),
  E_SECRET_PORT: spec(403, 1, 'a secret fetch came from an unprivileged source port', 'fetch with rolecast-boot in the initramfs (root binds a port below 1024); behind a proxy that rewrites ports set secrets.requirePrivilegedPort: false'),
  E_BOOT_TOKEN: spec(401, 1, 'no boot token, or not one this server made for this MAC', 'boot the machine: its script (fetched from its own address after its DHCP) carries rolecast.token='),
  E_BOOT_TOKEN_EXPIRED: spec(403, 1, 'the boot token is older than the secrets window', 'reboot the machine; raise secrets.windowS for firmware that boots slowly'),
  E_BOOT_TOKEN_SPENT: spec(403, 1, 'the boot token was used already, or a newer boot of the MAC superseded it', 'reboot the machine: every script fetch mints a new token, whose bundle goes out once'),
  E_EVENT_SIGNATURE: spec(401, 1, 'the phone-home event is signed, but not with this boot\'s key', 'sign with /run/rolecast/boot.key of the current boot (rolecast-boot post); unsigned events are recorded as unverified claims'),
  E_DENIED: spec(403, 1, 'path refused', 'ask for a file inside the served roots'),
  E_NOT_FOUND: spec(404, 1, 'no such thing', 'check the name (rolecast machines, rolecast images list)'),
  E_UNKNOWN_MACHINE: spec(404, 1, 'no machine with that MAC or host', 'check `rolecast machines`, or the unknown-machine policy'),
  E_NO_BOOT: spec(404, 1, 'this machine gets no boot answer', 'the message says why (policy, destructive target, architecture)'),
  E_CONFLICT: spec(409, 1, 'another edit came first', 'read the current value and retry'),
  E_RELOAD_HELD: spec(409, 1, 'the reload would drop more machines than reload.maxDropShare allows', 'check the profiles; confirm with `rolecast reload --force` or SIGHUP'),
  E_LOCKED: spec(409, 1, 'another edit holds the profile lock', 'retry; remove the lock file only if no rolecast runs'),
  E_RANGE: spec(416, 1, 'the byte range is outside the file', 'ask for a range inside Content-Length'),
  E_NO_SUCH_ROLE: spec(422, 1, 'no role by that name', 'pick one of the roles the message lists'),
  E_NO_CONFIRM_WIPE: spec(422, 1, 'a destructive target needs confirm_wipe: true on the machine', 'set confirm_wipe: true on its line in machines.yaml'),
  E_CONFIRM: spec(422, 1, 'a destructive action needs its confirmation', 'send confirm with the host name'),
  E_OFF: spec(403, 1, 'this server has that feature off', 'see the server config'),
  E_ADOPT_HOST: spec(409, 1, 'that host name is taken', 'pick another --host'),
  E_ADOPT_ROLE: spec(422, 1, 'no role by that name to adopt into', 'pick one of the roles listed'),
  E_ADOPT_ADDRESS: spec(409, 1, 'that address is in use or outside the networks', 'pick a free address (or leave --ip out)'),
  E_ADOPT_MAC: spec(409, 1, 'a MAC of this box already belongs to a machine', 'edit that machine instead, or forget the entry'),
  E_ADOPT_STATE: spec(409, 1, 'this inbox entry cannot be adopted as it is', 'the message says why'),
  E_ADOPT_AMBIGUOUS: spec(409, 1, 'the serial or UUID names more than one inbox entry', 'adopt by MAC'),
  E_INBOX_FULL: spec(503, 1, 'the discovery inbox is full', 'adopt or forget entries (rolecast discovered)'),
  E_REPORT_SOURCE: spec(403, 1, 'a discovery report came from another address than the one leased to its MAC', 'report from the box itself, with the address rolecast leased it'),
  E_BAD_REPORT: spec(400, 1, 'the discovery report is malformed', 'fix the field named in the message (see README "Discovery")'),
  E_SERVER_UNREACHABLE: spec(503, 1, 'the rolecast server cannot be reached', 'start rolecast serve, or point --base-url at it'),
  E_CSRF: spec(403, 1, 'the request lacks the session\'s CSRF value', 'reload the page and retry'),
  E_UI_NOT_BUILT: spec(503, 1, 'the web UI was not built', 'run npm run build'),
  E_STATE_UNAVAILABLE: spec(503, 1, 'the shared state database cannot be reached', 'check the database; rolecast retries by itself'),
  E_STATE_SCHEMA: spec(500, 1, 'the state database schema is not one this rolecast knows', 'upgrade rolecast, or use a database of this version'),
  E_NO_BMC: spec(422, 1, 'the machine has no BMC in the inventory', 'add bmc: { type, address, user, password: secret:NAME } to its line'),
  E_PROFILE: spec(422, 1, 'the profiles are invalid', 'fix each error listed as file:line:col'),
  E_EDIT: spec(422, 1, 'this edit cannot be made to the YAML', 'edit the file by hand as the message says'),
  E_CONFIG: spec(422, 1, 'the server config file is invalid', 'fix each error listed as file:line:col'),
  E_CONFIG_MISSING: spec(404, 1, 'the server config file does not exist', 'fix the path or copy the example the message names'),
  E_NO_PROFILES: spec(404, 1, 'the profiles directory does not exist', 'pass --profiles DIR or copy the bundled example'),
  E_CONFIG_UNREADABLE: spec(500, 1, 'the server config file cannot be read', 'check its path and permissions'),
  E_NO_USER: spec(500, 1, 'the service user does not exist', 'create it (the Debian package does) or run as that user'),
  E_PORT_IN_USE: spec(500, 1, 'a port rolecast needs is taken', 'stop the process the message names, or change the port'),
  E_PORT_DENIED: spec(500, 1, 'no permission to bind a privileged port', 'run as root or give CAP_NET_BIND_SERVICE'),
  E_ADDRESS_NOT_HERE: spec(500, 1, 'the listen address is not on this host', 'fix address/bind in the server config'),
  E_PROFILE_IO: spec(500, 1, 'a profile file cannot be read', 'check the path and its permissions'),
  E_UNKNOWN_ROLE: spec(500, 1, 'a machine names a role missing from its snapshot', 'a bug: report it with the log'),
  E_RENDER: spec(500, 1, 'a renderer lacks data it needs', 'the message names the machine and the missing value'),
  E_NO_IMAGE: spec(500, 1, 'an image the inventory names is missing on disk', 'build it (rolecast images build) or fix its path'),
  E_BAD_IMAGE: spec(500, 1, 'an image on disk is not what its kind says', 'rebuild the image; the message names the byte offset'),
  E_STATE_CORRUPT: spec(500, 1, 'a state file cannot be read', 'fix or move the named file aside'),
  E_SERVER_KEY: spec(500, 1, 'the server key is unusable', 'remove <data>/server.key to make a new one'),
  E_NO_ZSTD: spec(500, 1, 'zstd cannot run', 'apt-get install zstd, or fetch the .tar.gz form'),
  E_BMC_TIMEOUT: spec(504, 3, 'the BMC did not answer within the call\'s deadline', 'check that the BMC is up and reachable; bmc.timeoutMs (or --timeout) for slow BMCs'),
  E_BMC_UNREACHABLE: spec(502, 3, 'the BMC cannot be reached, or no session could be opened', 'check its address, port and the network path to it'),
  E_BMC_AUTH: spec(502, 3, 'the BMC refused the credentials', 'check bmc.user and the secret in secrets.yaml'),
  E_BMC_BUSY: spec(503, 3, 'the BMC, or rolecast\'s cap on BMC calls, was busy until the deadline', 'retry later; bmc.maxConcurrent sets the cap'),
  E_BMC_REFUSED: spec(409, 3, 'the BMC refused the command', 'read the BMC\'s words in the message (e.g. a cycle of a switched-off machine)'),
  E_BMC_PROTOCOL: spec(502, 3, 'the BMC answered something rolecast cannot read', 'the message quotes the answer; report it with the BMC model'),
  E_UNREACHABLE: spec(503, 1, 'the rolecast server cannot be reached', 'check that it runs and the URL (--url)'),
  E_NOT_SERVING: spec(503, 1, 'the running server does not serve the edited profiles, so a reboot would boot the old ones', 'read the server\'s log (an invalid edit, a reload held back by the drop guard); rolecast reload [--force]'),
  E_INTERNAL: spec(500, 1, 'rolecast failed', 'a bug: report it with the log'),
  E_UNKNOWN_ROLE_IMAGE: spec(400, 1, 'no image recipe for that role', 'see `rolecast images build --help`'),
  E_UNKNOWN_IMAGE_TARGET: spec(400, 1, 'no such image target', 'one of those the message lists'),
  E_NO_PREVIOUS: spec(404, 1, 'no earlier image version', 'nothing to roll back to'),
  E_NO_BUSYBOX: spec(500, 1, 'busybox-static is missing', 'apt-get install busybox-static'),
  E_NO_MODULES: spec(500, 1, 'kernel modules are missing', 'apt-get install linux-image-amd64'),
  E_NO_KERNEL: spec(500, 1, 'no kernel to copy', 'apt-get install linux-image-amd64'),
  E_KERNEL_COPY: spec(500, 1, 'the kernel cannot be copied', 'check permissions on /boot and the images directory'),
  E_NO_MEMTEST: spec(500, 1, 'memtest86+ is missing', 'apt-get install memtest86+'),
  E_NO_MMDEBSTRAP: spec(500, 1, 'mmdebstrap is missing', 'apt-get install mmdebstrap'),
  E_MMDEBSTRAP: spec(500, 1, 'mmdebstrap failed', 'read its output in the message'),
  E_NO_ROOTFS: spec(409, 1, 'the role has no rootfs image to version', 'give the role a rootfs image whose path ends in .tar'),
  E_IMAGE_HISTORY: spec(500, 1, 'an image version history cannot be read', 'fix or move aside the <name>.history.json the message names'),
  E_IMAGE_BUSY: spec(503, 1, 'another image operation holds the version lock', 'retry; remove the lock file only if no rolecast runs'),
  E_NO_DIFF: spec(500, 1, 'diff cannot run', 'apt-get install diffutils'),
  E_CAPTURE_MALFORMED: spec(400, 1, 'the capture upload is malformed', 'fix the field the message names (rolecast-capture makes a valid one)'),
  E_CAPTURE_TYPE: spec(415, 1, 'the capture upload is not a tar', 'send Content-Type: application/x-tar'),
  E_CAPTURE_TOO_LARGE: spec(413, 1, 'the capture upload is too large', 'capture fewer paths at once, or raise http.captureMaxBytes'),
  E_CAPTURE_CREDENTIAL: spec(401, 1, 'no or a wrong capture credential', 'send Authorization: Bearer <the box\'s /etc/rolecast/capture.key>'),
  E_CAPTURE_ADDRESS: spec(403, 1, 'a capture comes only from the machine\'s own address', 'run rolecast-capture on the machine itself'),
  E_CAPTURE_OFF: spec(403, 1, 'this server takes no captures', 'run rolecast serve (it has the server key)'),
  E_CAPTURE_REFUSED: spec(422, 1, 'paths that are never captured', 'leave out the paths listed in refused (rendered per machine, secrets); change those in the profiles'),
  E_CAPTURE_BASE_GONE: spec(409, 1, 'the version the box booted is gone', 'reboot the box onto a current version and capture again'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export function errorSpec(code: string): ErrorSpec {
  return (ERRORS as Record<string, ErrorSpec>)[code] ?? ERRORS.E_INTERNAL;
}

/**
 * Typed errors with stable codes. Every error says what went wrong and, through the catalogue, what to
 * do; the original error is kept as `cause`.
 */
export class RolecastError extends Error {
  readonly code: ErrorCode;
  /** Extra fields for the API answer (e.g. the list of profile issues). */
  readonly details?: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    if (options?.details) this.details = options.details;
  }

  get status(): number {
    return ERRORS[this.code].status;
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
      issues.map(formatIssue).join('\n'), { details: { issues: issues.map(formatIssue) } });
    this.issues = issues;
  }
}

/** A renderer was asked for something the inventory does not provide: never render "undefined". */
export class RenderError extends RolecastError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_RENDER', message, options);
  }
}
