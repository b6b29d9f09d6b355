/**
 * Mail-merge templates (pure, no DOM): `{{column}}` placeholders filled from a
 * CSV row. In HTML the values are escaped; a placeholder naming a column the
 * CSV does not have is an error that names it, never an empty string.
 */

const PLACEHOLDER = /\{\{\s*([^{}]+?)\s*\}\}/g;

/** A template that refers to a column the data does not have. */
export class TemplateError extends Error {
  /** The unknown column name. */
  readonly field: string;
  constructor(field: string, where: string) {
    super(`${where} uses {{${field}}}, but the CSV has no column "${field}"`);
    this.name = 'TemplateError';
    this.field = field;
  }
}

/** The distinct column names a template uses, in order of first use. */
export function placeholders(template: string): string[] {
  const out: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) if (!out.includes(m[1])) out.push(m[1]);
  return out;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** Checks that every placeholder of a template names a column. */
export function checkTemplate(template: string, columns: string[], where: string): void {
  for (const f of placeholders(template)) if (!columns.includes(f)) throw new TemplateError(f, where);
}

/** Fills a template from a row; `html` escapes the values. */
export function merge(template: string, row: Record<string, string>, where: string, html = false): string {
  return template.replace(PLACEHOLDER, (_m, f: string) => {
    if (!Object.prototype.hasOwnProperty.call(row, f)) throw new TemplateError(f, where);
    const v = row[f];
    return html ? escapeHtml(v) : v;
  });
}
