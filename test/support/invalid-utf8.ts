// Byte sequences that are not UTF-8, for the fuzzing tests: a lone 0xff, overlong encodings of "/"
// (two and three bytes), an encoded UTF-16 surrogate, a five-byte form, and a truncated sequence.
export const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0xc0, 0xaf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xc3],
];
