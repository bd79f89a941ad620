/**
 * A serial console's bytes as the text a person would have read on the screen: pure functions, no
 * state. Firmware and boot loaders (SeaBIOS, iPXE, GRUB) draw with ANSI/VT100 control sequences —
 * colours, cursor moves, clear screen — and rewrite progress lines with a bare carriage return; a
 * timeline entry wants none of that, only the last lines of text.
 */

// ECMA-48: CSI (ESC [ params intermediates final), OSC (ESC ] ... BEL or ST), charset selection
// (ESC ( B), and the other two-byte escapes (ESC 7, ESC c, ESC =, ...). The 8-bit CSI (0x9b) is left
// to the control-character pass: serial consoles at 115200 8N1 send the 7-bit forms.
// eslint-disable-next-line no-control-regex -- terminal control is exactly what is removed here
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()*+][0-~]|\x1b[ -/]*[0-~]/g;
// What is left after the escapes: C0 controls other than tab, newline, carriage return and backspace.
// eslint-disable-next-line no-control-regex -- as above
const CONTROLS = /[\x00-\x07\x0b\x0c\x0e-\x1f\x7f]/g;
// A cursor position or an erase-display sequence starts a fresh screen line (iPXE's menus, GRUB).
// eslint-disable-next-line no-control-regex -- as above
const NEW_LINE_ESCAPES = /\x1b\[(?:\d*;?\d*[Hf]|[0-2]?J)/g;

/** One physical line as shown: a bare CR returns to column 0 and later text overwrites; BS steps back. */
function renderLine(line: string): string {
  let cells: string[] = [];
  let col = 0;
  for (const ch of line) {
    if (ch === '\r') col = 0;
    else if (ch === '\b') col = Math.max(0, col - 1);
    else if (ch === '\t') {
      const next = (Math.floor(col / 8) + 1) * 8;
      while (col < next) { cells[col] ??= ' '; col++; }
    } else {
      cells[col++] = ch;
    }
  }
  cells = Array.from(cells, (c) => c ?? ' ');
  return cells.join('').trimEnd();
}

/** The console output as plain text lines (terminal control removed, CR/BS applied, trailing blanks cut). */
export function screenText(raw: string): string {
  const text = raw.replace(NEW_LINE_ESCAPES, '\n').replace(ESCAPES, '').replace(CONTROLS, '');
  return text.split('\n').map(renderLine).join('\n');
}

/**
 * The last `n` non-empty lines of the screen text, each cut at `width` characters: what a failed
 * boot's console showed last, small enough for a timeline entry.
 */
export function lastScreen(raw: string, n = 24, width = 160): string[] {
  const lines = screenText(raw).split('\n').filter((l) => l.trim() !== '');
  return lines.slice(-n).map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
}
