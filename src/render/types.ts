/** What a renderer produces: a file for the booted system (or a boot config), pure data. */
export interface RenderedFile {
  /** Absolute path in the booted system, e.g. /etc/keepalived/keepalived.conf */
  path: string;
  /** POSIX permission bits, e.g. 0o644 */
  mode: number;
  content: string;
  /** True when the file holds a secret: served only to the machine it belongs to. */
  secret: boolean;
}

/** Context renderers need besides the machine: where the server is. No clock, no host name. */
export interface RenderContext {
  /** Base URL of rolecast's HTTP server as machines reach it, e.g. http://10.0.0.1:8080 */
  baseUrl: string;
  /** Provisioning server address (next-server). */
  server: string;
  /**
   * The server key (src/serverkey.ts). When set, every machine whose role has a rootfs gets its capture
   * credential (/etc/rolecast/capture.key, secret); renderers only derive from it, they never read it.
   */
  serverKey?: Buffer;
  /**
   * The image store's view now (current and staged versions of role images), loaded by the edge before
   * it asks the plan: fleet views and `rolecast diff` pass it to planBoot, as the rootfs route does.
   */
  images?: import('../images/view.js').ImageView;
}
