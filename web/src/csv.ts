/**
 * CSV parsing for the mail merge (pure, no DOM): RFC 4180 with the usual
 * leniencies (LF or CRLF line ends, a UTF-8 byte-order mark, `,` or `;` as
 * the separator, detected from the header line). Errors name the line.
 */

/** A parsed CSV table: the header names and one record per data row. */
export interface CsvTable {
  /** Column names from the first line, trimmed. */
  headers: string[];
  /** One object per data row, keyed by header name. */
  rows: Record<string, string>[];
  /** 1-based line number in the file where each row starts. */
  lines: number[];
}

/** A CSV that cannot be read, with the line where the problem is. */
export class CsvError extends Error {
  /** 1-based line number. */
  readonly line: number;
  constructor(line: number, message: string) {
    super(`CSV line ${line}: ${message}`);
    this.name = 'CsvError';
    this.line = line;
  }
}

function detectSeparator(text: string): string {
  let quoted = false;
  let commas = 0;
  let semis = 0;
  for (const c of text) {
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === '\n' || c === '\r')) break;
    else if (!quoted && c === ',') commas++;
    else if (!quoted && c === ';') semis++;
  }
  return semis > commas ? ';' : ',';
}

/** Splits CSV text into records of fields, with the start line of each. */
export function parseRecords(input: string, sep = ','): { fields: string[]; line: number }[] {
  const text = input.startsWith('\uFEFF') ? input.slice(1) : input;
  const records: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let i = 0;
  let inQuotes = false;
  let quoteStart = 0;
  let fieldStarted = false;
  while (i < text.length) {
    const c = text[i];
    if (inQuotes) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        inQuotes = false;
        i++;
        const n = text[i];
        if (n !== undefined && n !== sep && n !== '\n' && n !== '\r') {
          throw new CsvError(line, `unexpected character ${JSON.stringify(n)} after a closing quote`);
        }
        continue;
      }
      if (c === '\n') line++;
      field += c;
      i++;
      continue;
    }
    if (c === '"' && !fieldStarted) {
      inQuotes = true;
      fieldStarted = true;
      quoteStart = line;
      i++;
      continue;
    }
    if (c === sep) {
      fields.push(field);
      field = '';
      fieldStarted = false;
      i++;
      continue;
    }
    if (c === '\r' || c === '\n') {
      fields.push(field);
      if (!(fields.length === 1 && fields[0] === '')) records.push({ fields, line: recordLine });
      fields = [];
      field = '';
      fieldStarted = false;
      if (c === '\r' && text[i + 1] === '\n') i++;
      i++;
      line++;
      recordLine = line;
      continue;
    }
    if (c === '"') throw new CsvError(line, 'a quote inside an unquoted field (quote the whole field and double the quote)');
    field += c;
    fieldStarted = true;
    i++;
  }
  if (inQuotes) throw new CsvError(quoteStart, 'a quoted field is never closed');
  if (fieldStarted || fields.length > 0) {
    fields.push(field);
    records.push({ fields, line: recordLine });
  }
  return records;
}

/** Parses a CSV file with a header line into a table. */
export function parseCsv(input: string): CsvTable {
  const sep = detectSeparator(input.startsWith('\uFEFF') ? input.slice(1) : input);
  const records = parseRecords(input, sep);
  if (records.length === 0) throw new CsvError(1, 'the file is empty (a header line is needed)');
  const headers = records[0].fields.map((h) => h.trim());
  const seen = new Set<string>();
  headers.forEach((h, idx) => {
    if (!h) throw new CsvError(records[0].line, `column ${idx + 1} has no name in the header line`);
    if (seen.has(h)) throw new CsvError(records[0].line, `column "${h}" appears twice in the header line`);
    seen.add(h);
  });
  const rows: Record<string, string>[] = [];
  const lines: number[] = [];
  for (const rec of records.slice(1)) {
    if (rec.fields.length !== headers.length) {
      throw new CsvError(rec.line, `has ${rec.fields.length} fields but the header has ${headers.length}`);
    }
    const row: Record<string, string> = {};
    headers.forEach((h, idx) => (row[h] = rec.fields[idx]));
    rows.push(row);
    lines.push(rec.line);
  }
  return { headers, rows, lines };
}

/** Quotes one value for CSV output when needed. */
export function csvField(value: string): string {
  return /[",\r\n;]/.test(value) || /^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Writes a table as CSV text (CRLF line ends, as RFC 4180 says). */
export function toCsv(headers: string[], rows: string[][]): string {
  return [headers, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}
