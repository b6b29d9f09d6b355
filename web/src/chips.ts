/**
 * Address chips: an input that turns each typed or pasted address into a
 * chip, valid or marked invalid with the reason (address.ts). Enter, comma,
 * semicolon, Tab and leaving the field commit what was typed; Backspace in an
 * empty field removes the last chip; each chip has a remove button.
 */

import { parseAddressList, type ParsedAddress } from './address';
import { h } from './dom';

/** How a chips field behaves beyond the default. */
export interface ChipOptions {
  /** An address already there (same email, any case) is not added twice. */
  unique?: boolean;
  /** Extra controls shown inside a valid chip (e.g. a required/optional choice). */
  decorate?: (p: Extract<ParsedAddress, { ok: true }>) => Node | null;
}

/** A chips field bound to an `<input>` inside a `.chips` container. */
export class ChipInput {
  readonly input: HTMLInputElement;
  readonly label: string;
  private box: HTMLElement;
  private error: HTMLElement;
  private items: ParsedAddress[] = [];
  private listeners: (() => void)[] = [];
  private removeListeners: ((p: ParsedAddress) => void)[] = [];
  private opts: ChipOptions;

  constructor(input: HTMLInputElement, label: string, opts: ChipOptions = {}) {
    this.input = input;
    this.label = label;
    this.opts = opts;
    const box = input.parentElement;
    if (!box) throw new Error(`#${input.id} has no chips container`);
    this.box = box;
    this.error = h('div', { class: 'field-error', id: `${input.id}-error`, 'aria-live': 'polite' });
    box.after(this.error);
    input.setAttribute('aria-describedby', this.error.id);
    input.addEventListener('keydown', (e) => this.key(e));
    input.addEventListener('blur', () => this.commit());
    input.addEventListener('paste', (e) => {
      const text = e.clipboardData?.getData('text/plain');
      if (text && /[,;\n]/.test(text)) {
        e.preventDefault();
        this.add(this.input.value + text);
        this.input.value = '';
      }
    });
    box.addEventListener('click', (e) => {
      if (e.target === box) input.focus();
    });
  }

  /** Called whenever the chips change. */
  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }

  /** Called when the person removes a chip (its button or Backspace), not when set() replaces them. */
  onRemove(cb: (p: ParsedAddress) => void): void {
    this.removeListeners.push(cb);
  }

  /** The chips as parsed, valid and invalid, without committing typing. */
  entries(): readonly ParsedAddress[] {
    return this.items;
  }

  /** Removes the chips of this email (any case); returns whether one was there. */
  removeEmail(email: string): boolean {
    const before = this.items.length;
    this.items = this.items.filter((p) => !p.ok || p.email.toLowerCase() !== email.toLowerCase());
    if (this.items.length === before) return false;
    this.render();
    return true;
  }

  /**
   * The chips with what is being typed: committed into chips first (the
   * default, for sending), or only read (`commit = false`, for previews, so
   * that a pause in typing never turns half an address into a chip).
   */
  private current(commit: boolean): ParsedAddress[] {
    if (commit) {
      this.commit();
      return this.items;
    }
    return this.input.value.trim() ? [...this.items, ...parseAddressList(this.input.value)] : this.items;
  }

  /** The valid addresses, in RFC 5322 form; commits pending typing first unless `commit` is false. */
  values(commit = true): string[] {
    return this.current(commit).flatMap((p) => (p.ok ? [p.text] : []));
  }

  /** The entries that are not valid addresses (pending typing as for values()). */
  invalid(commit = true): { input: string; error: string }[] {
    return this.current(commit).flatMap((p) => (p.ok ? [] : [{ input: p.input, error: p.error }]));
  }

  /** Replaces every chip. */
  set(list: string[]): void {
    this.items = parseAddressList(list.join(', '));
    this.input.value = '';
    this.render();
  }

  /** Adds the addresses of a typed or pasted list. */
  add(text: string): void {
    let parsed = parseAddressList(text);
    if (this.opts.unique) {
      const seen = new Set(this.items.flatMap((p) => (p.ok ? [p.email.toLowerCase()] : [])));
      parsed = parsed.filter((p) => {
        if (!p.ok) return true;
        const k = p.email.toLowerCase();
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
    }
    if (!parsed.length) return;
    this.items.push(...parsed);
    this.render();
  }

  private commit(): void {
    if (this.input.value.trim()) {
      const text = this.input.value;
      this.input.value = '';
      this.add(text);
    }
  }

  private key(e: KeyboardEvent): void {
    if (e.key === 'Enter' || e.key === ',' || e.key === ';' || (e.key === 'Tab' && this.input.value.trim())) {
      if (e.key !== 'Tab' || !e.shiftKey) {
        if (e.key !== 'Tab') e.preventDefault();
        this.commit();
      }
    } else if (e.key === 'Backspace' && this.input.value === '' && this.items.length) {
      const gone = this.items.pop();
      this.render();
      if (gone) for (const l of this.removeListeners) l(gone);
    }
  }

  private render(): void {
    for (const c of Array.from(this.box.querySelectorAll('.chip'))) c.remove();
    this.items.forEach((p, i) => {
      const text = p.ok ? p.text : p.input;
      const chip = h(
        'span',
        {
          class: p.ok ? 'chip' : 'chip invalid',
          title: p.ok ? p.email : `Not a valid address: ${p.error}`,
          'data-valid': p.ok ? 'true' : 'false',
        },
        text,
        p.ok && this.opts.decorate ? this.opts.decorate(p) : null,
        h('button', {
          type: 'button',
          class: 'chip-remove',
          'aria-label': `Remove ${text} from ${this.label}`,
          text: '×',
          onclick: () => {
            const [gone] = this.items.splice(i, 1);
            this.render();
            this.input.focus();
            if (gone) for (const l of this.removeListeners) l(gone);
          },
        }),
      );
      this.box.insertBefore(chip, this.input);
    });
    const bad = this.items.filter((p): p is Extract<ParsedAddress, { ok: false }> => !p.ok);
    this.error.textContent = bad.map((b) => `${this.label}: "${b.input}" is not valid: ${b.error}`).join('\n');
    this.input.setAttribute('aria-invalid', bad.length ? 'true' : 'false');
    for (const l of this.listeners) l();
  }
}
