/**
 * Every rolecast command, in the order `rolecast --help` lists them. A new command is one file in
 * src/commands/ exporting a CommandSpec (see spec.ts) and one line here.
 */
import type { CommandSpec } from './spec.js';
import { assignCommand, diffCommand, machinesCommand, renderCommand, validateCommand } from './inventory.js';
import { serveCommand } from './serve.js';
import { eventsCommand } from './events.js';
import { imagesCommand } from './images.js';
import { profilesCommand } from './profiles.js';
import { adoptCommand, commissionCommand, discoveredCommand, factsCommand, forgetCommand } from './discovery.js';
import { bootOnceCommand, consoleCommand, powerCommand } from './power.js';
import { reloadCommand } from './reload.js';

export const COMMANDS: readonly CommandSpec[] = [
  serveCommand,
  reloadCommand,
  validateCommand,
  machinesCommand,
  renderCommand,
  assignCommand,
  bootOnceCommand,
  diffCommand,
  eventsCommand,
  imagesCommand,
  profilesCommand,
  discoveredCommand,
  adoptCommand,
  forgetCommand,
  commissionCommand,
  factsCommand,
  powerCommand,
  consoleCommand,
];
