/** A cell that holds a plain decimal number, as a number; null for an empty cell or anything else. */
export function decimalCell(cell: string | undefined): number | null {
  if (cell === undefined || cell === '') return null;
  const n = Number(cell);
  // Number('') and Number(' ') are 0 and Number('0x1f') is 31: only plain decimals count.
  return Number.isFinite(n) && /^-?\d+(?:\.\d+)?$/.test(cell) ? n : null;
}
