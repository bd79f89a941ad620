/**
 * A serial line between a BMC and a VM's UART, run inside a lab namespace:
 *   node --import tsx test/helpers/serial-line.ts <bmc-port> <vm-port>
 * On a real server the BMC's SOL is wired to the UART, and the wire is there whether the host is on
 * or off. Here ipmi_sim's SOL connects to <bmc-port> and the VM's QEMU (a socket chardev in client
 * mode with reconnect) to <vm-port>; this process copies bytes between whichever two connections are
 * current and drops them when one side is absent, as a line with nothing on its other end. Without it
 * ipmi_sim's SOL would connect to QEMU itself, and its reconnects to a VM that the BMC just switched
 * off and on race QEMU's one-client socket: some boots' consoles never reached SOL.
 */
import { createServer, type Socket } from 'node:net';

const [bmcPort, vmPort] = process.argv.slice(2).map(Number);
if (!bmcPort || !vmPort) {
  process.stderr.write('usage: serial-line.ts <bmc-port> <vm-port>\n');
  process.exit(2);
}

const ends: { bmc?: Socket; vm?: Socket } = {};

function side(name: 'bmc' | 'vm', other: 'bmc' | 'vm', port: number): void {
  const server = createServer((s) => {
    ends[name]?.destroy(); // the newest connection is the one plugged in
    ends[name] = s;
    s.setNoDelay(true);
    s.on('data', (d) => { ends[other]?.write(d); });
    s.on('error', () => undefined);
    s.on('close', () => { if (ends[name] === s) delete ends[name]; });
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write(`${name} ${port}\n`));
}

side('bmc', 'vm', bmcPort);
side('vm', 'bmc', vmPort);
