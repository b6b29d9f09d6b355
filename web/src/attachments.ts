/**
 * Attachments: the file picker and drag and drop onto the composer, a list
 * with sizes and remove buttons, and the spec attachments they become.
 */

import { fileBytes, formatSize, h } from './dom';
import { contentSize, type SpecAttachment } from './spec';

/**
 * Bytes a file takes in a message: base64 (4 characters per 3 bytes) in
 * lines of 76 characters plus CRLF. The part's headers come on top.
 */
export function encodedSize(n: number): number {
  const b64 = Math.ceil(n / 3) * 4;
  return b64 + Math.ceil(b64 / 76) * 2;
}

/** One attached file. */
interface Item {
  filename: string;
  contentType: string;
  size: number;
  /** The file's bytes (what buildEml takes), or base64 text from an opened message. */
  content: string | Uint8Array;
}

/** The attachments list bound to its picker, drop zone and list element. */
export class Attachments {
  private items: Item[] = [];
  private listeners: (() => void)[] = [];
  private list: HTMLElement;

  /**
   * `maxBytes` gives the largest message the relay takes (0: unknown); a file
   * that alone would make a larger message is refused at once, with the
   * reason in `errorEl`, and never read.
   */
  constructor(
    picker: HTMLInputElement,
    dropZone: HTMLElement,
    list: HTMLElement,
    private errorEl: HTMLElement | null = null,
    private maxBytes: () => number = () => 0,
  ) {
    this.list = list;
    picker.addEventListener('change', () => {
      void this.addFiles(Array.from(picker.files ?? [])).then(() => (picker.value = ''));
    });
    dropZone.addEventListener('dragover', (e) => {
      if (e.dataTransfer?.types.includes('Files')) {
        e.preventDefault();
        dropZone.classList.add('dragging');
      }
    });
    dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
    dropZone.addEventListener('drop', (e) => {
      dropZone.classList.remove('dragging');
      const files = Array.from(e.dataTransfer?.files ?? []);
      if (files.length) {
        e.preventDefault();
        void this.addFiles(files);
      }
    });
  }

  /** Called whenever the list changes. */
  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }

  /** Adds files. */
  async addFiles(files: File[]): Promise<void> {
    const refused: string[] = [];
    const max = this.maxBytes();
    for (const f of files) {
      const asSent = encodedSize(f.size);
      if (max > 0 && asSent > max) {
        refused.push(
          `${f.name || 'The file'} was not attached: it is ${formatSize(f.size)}, about ${formatSize(asSent)} once encoded for mail, and this token may send up to ${formatSize(max)} a message.`,
        );
        continue;
      }
      const bytes = await fileBytes(f);
      this.items.push({
        filename: f.name || 'attachment',
        contentType: f.type || 'application/octet-stream',
        size: bytes.length,
        content: bytes,
      });
    }
    if (this.errorEl) this.errorEl.textContent = refused.join('\n');
    this.render();
  }

  /** Adds parts of a spec (forward as a new message, a draft): base64 text or bytes. */
  addParts(parts: SpecAttachment[]): void {
    for (const p of parts) {
      this.items.push({
        filename: p.filename ?? 'attachment',
        contentType: p.contentType,
        size: contentSize(p.content),
        content: p.content,
      });
    }
    this.render();
  }

  /** Removes every attachment. */
  clear(): void {
    this.items = [];
    if (this.errorEl) this.errorEl.textContent = '';
    this.render();
  }

  /** The attachments of the spec. */
  parts(): SpecAttachment[] {
    return this.items.map((i) => ({ filename: i.filename, contentType: i.contentType, content: i.content }));
  }

  private render(): void {
    this.list.replaceChildren(
      ...this.items.map((it, idx) =>
        h(
          'li',
          {},
          h('span', { class: 'att-name', text: it.filename }),
          h('span', { class: 'att-meta', text: ` ${it.contentType}, ${formatSize(it.size)} ` }),
          h('button', {
            type: 'button',
            'aria-label': `Remove attachment ${it.filename}`,
            text: 'Remove',
            onclick: () => {
              this.items.splice(idx, 1);
              this.render();
            },
          }),
        ),
      ),
    );
    for (const l of this.listeners) l();
  }
}
