// What a client accepts from its server: only alphabet symbols, never more than it sent, and all of them by DONE.
import { describeByte, findNonSymbol } from '../cipher/alphabet.js';
import { textOf } from '../format/words.js';

/** The text as sent so far: `sent` symbols, and `total` once the whole text's length is known. */
export interface SentText {
  sent(): number;
  total(): number | null;
}

/**
 * Each method returns null when the reply is still what an honest server sends, else what
 * is wrong, as the end of a sentence that starts with the server: 'sent 37 symbols for a
 * 36-symbol text'. The check comes before a payload is written, so a server that sends
 * too much never gets one byte past the text's length onto the output.
 */
export class ReplyCheck {
  /** Symbols received and accepted so far. */
  received = 0;

  constructor(private readonly _text: SentText) {}

  result(payload: Buffer): string | null {
    const count = this.received + payload.length;
    const total = this._text.total();
    if (total !== null && count > total) return `sent ${count} symbols for ${textOf(total)}`;
    const sent = this._text.sent();
    if (count > sent) return `sent ${count} symbols for the first ${sent} of the text`;
    const bad = findNonSymbol(payload);
    if (bad >= 0) return `sent ${describeByte(payload[bad])} as symbol ${this.received + bad + 1}, which is not a symbol`;
    this.received = count;
    return null;
  }

  done(): string | null {
    const total = this._text.total();
    if (total === null) return `sent DONE after ${this.received} symbols, before the end of the text`;
    return this.received === total ? null : `sent ${this.received} symbols for ${textOf(total)}`;
  }
}
