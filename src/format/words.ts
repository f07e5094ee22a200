// English for messages: "1 symbol", "an 8-symbol text", "an enc_client".

export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** "a" or "an" before a word or a number, by how it is spoken. */
export function article(word: string | number): string {
  if (typeof word === 'string') return /^[aeiou]/i.test(word) ? 'an' : 'a';
  let lead = word;
  while (lead >= 1000) lead = Math.floor(lead / 1000);
  return String(lead).startsWith('8') || lead === 11 || lead === 18 ? 'an' : 'a';
}

/** "a 36-symbol text", "an 8-symbol text". */
export function textOf(symbols: number): string {
  return `${article(symbols)} ${symbols}-symbol text`;
}
