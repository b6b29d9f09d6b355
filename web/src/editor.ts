/**
 * The rich-text editor: a contenteditable area with a keyboard-reachable
 * toolbar (bold, italic, underline, lists, link, quote). Its HTML becomes the
 * message's HTML body and, through html-text.ts, the automatic plain-text
 * alternative. Images pasted or dropped into it become inline parts: the
 * editor shows them from a data: URL and the HTML refers to them as
 * `cid:<Content-ID>`.
 */

import { bytesToBase64 } from './base64';
import { fileBytes, randomId } from './dom';
import type { SpecAttachment } from './spec';

interface InlineImage {
  cid: string;
  filename: string;
  contentType: string;
  base64: string;
}

/** The editor bound to its toolbar and area. */
export class Editor {
  readonly area: HTMLElement;
  private images = new Map<string, InlineImage>();
  private listeners: (() => void)[] = [];

  constructor(area: HTMLElement, toolbar: HTMLElement) {
    this.area = area;
    toolbar.addEventListener('click', (e) => {
      const btn = (e.target as HTMLElement).closest('button[data-cmd]') as HTMLButtonElement | null;
      if (!btn) return;
      this.command(btn.dataset.cmd ?? '');
    });
    // The toolbar is one stop of the Tab order; the arrow keys, Home and End
    // move between its buttons (the ARIA toolbar pattern).
    const buttons = Array.from(toolbar.querySelectorAll<HTMLButtonElement>('button'));
    buttons.forEach((b, i) => (b.tabIndex = i === 0 ? 0 : -1));
    toolbar.addEventListener('keydown', (e) => {
      const i = buttons.indexOf(e.target as HTMLButtonElement);
      if (i < 0) return;
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: buttons.length - 1 }[e.key];
      if (next === undefined) return;
      e.preventDefault();
      const j = (next + buttons.length) % buttons.length;
      buttons[i].tabIndex = -1;
      buttons[j].tabIndex = 0;
      buttons[j].focus();
    });
    area.addEventListener('input', () => this.changed());
    area.addEventListener('paste', (e) => this.paste(e));
    area.addEventListener('drop', (e) => {
      const files = Array.from(e.dataTransfer?.files ?? []).filter((f) => f.type.startsWith('image/'));
      if (files.length) {
        e.preventDefault();
        e.stopPropagation();
        void this.insertImages(files);
      }
    });
    area.addEventListener('keydown', (e) => {
      if ((e.ctrlKey || e.metaKey) && ['b', 'i', 'u'].includes(e.key.toLowerCase())) {
        e.preventDefault();
        this.command({ b: 'bold', i: 'italic', u: 'underline' }[e.key.toLowerCase()] ?? '');
      }
    });
  }

  /** Called whenever the content changes. */
  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  private command(cmd: string): void {
    this.area.focus();
    switch (cmd) {
      case 'bold':
      case 'italic':
      case 'underline':
      case 'insertUnorderedList':
      case 'insertOrderedList':
        document.execCommand(cmd);
        break;
      case 'quote':
        document.execCommand('formatBlock', false, 'blockquote');
        break;
      case 'link': {
        const url = prompt('Link address (https://…)');
        if (url && /^(https?:|mailto:)/i.test(url.trim())) document.execCommand('createLink', false, url.trim());
        break;
      }
      case 'clear':
        document.execCommand('removeFormat');
        break;
    }
    this.changed();
  }

  private paste(e: ClipboardEvent): void {
    const files = Array.from(e.clipboardData?.items ?? [])
      .filter((i) => i.kind === 'file' && i.type.startsWith('image/'))
      .map((i) => i.getAsFile())
      .filter((f): f is File => f !== null);
    if (files.length) {
      e.preventDefault();
      void this.insertImages(files);
    }
  }

  /** Inserts images at the caret as inline parts. */
  async insertImages(files: File[]): Promise<void> {
    for (const f of files) {
      const bytes = await fileBytes(f);
      const cid = `${randomId()}@postwire`;
      const ext = (f.type.split('/')[1] ?? 'png').replace(/[^a-z0-9]/gi, '');
      const img: InlineImage = {
        cid,
        filename: f.name && f.name !== 'image.png' ? f.name : `pasted-${cid.slice(0, 8)}.${ext}`,
        contentType: f.type || 'image/png',
        base64: bytesToBase64(bytes),
      };
      this.images.set(cid, img);
      const el = document.createElement('img');
      el.src = `data:${img.contentType};base64,${img.base64}`;
      el.alt = img.filename;
      el.dataset.cid = cid;
      this.area.focus();
      const sel = getSelection();
      if (sel && sel.rangeCount && this.area.contains(sel.anchorNode)) {
        const r = sel.getRangeAt(0);
        r.deleteContents();
        r.insertNode(el);
        r.setStartAfter(el);
        r.collapse(true);
      } else {
        this.area.append(el);
      }
    }
    this.changed();
  }

  /** The HTML body, with inline images referred to by `cid:`. */
  html(): string {
    // A template's content is inert: changing src there loads nothing.
    const t = document.createElement('template');
    t.innerHTML = this.area.innerHTML;
    for (const img of Array.from(t.content.querySelectorAll('img[data-cid]'))) {
      const cid = img.getAttribute('data-cid') ?? '';
      img.setAttribute('src', `cid:${cid}`);
      img.removeAttribute('data-cid');
    }
    return t.innerHTML;
  }

  /** The inline parts the HTML still uses. */
  inlineParts(): SpecAttachment[] {
    const used = new Set(
      Array.from(this.area.querySelectorAll('img[data-cid]')).map((i) => (i as HTMLElement).dataset.cid ?? ''),
    );
    return [...this.images.values()]
      .filter((i) => used.has(i.cid))
      .map((i) => ({ filename: i.filename, contentType: i.contentType, content: i.base64, inline: true, contentId: i.cid }));
  }

  /**
   * Replaces the content (for reply and forward as a new message). Images
   * that refer to a known inline part show it; any other image (remote, or a
   * part that is not there) is dropped, keeping its alt text: the page loads
   * nothing from elsewhere.
   */
  setHtml(html: string, images: InlineImage[] = []): void {
    this.images = new Map(images.map((i) => [i.cid, i]));
    const t = document.createElement('template');
    t.innerHTML = html;
    for (const img of Array.from(t.content.querySelectorAll('img'))) {
      const src = img.getAttribute('src') ?? '';
      const m = /^cid:(.+)$/i.exec(src);
      const part = m ? this.images.get(m[1]) : undefined;
      if (part) {
        img.setAttribute('data-cid', part.cid);
        img.setAttribute('src', `data:${part.contentType};base64,${part.base64}`);
      } else if (!src.startsWith('data:image/')) {
        img.replaceWith(document.createTextNode(img.getAttribute('alt') ? `[${img.getAttribute('alt')}]` : ''));
      }
    }
    this.area.replaceChildren(t.content);
    this.changed();
  }
}
