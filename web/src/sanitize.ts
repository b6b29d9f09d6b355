/**
 * Cleans HTML that came from an opened message before it goes into the
 * editor (reply / forward as a new message): drops scripts, frames, forms,
 * event-handler attributes and javascript: links. The previews do not need
 * this: they render in sandboxed frames without scripts.
 */

const DROP = 'script,style,iframe,frame,frameset,object,embed,link,meta,base,form,input,button,textarea,select,svg,math,template';

/** Returns the body of `html` with everything active removed. */
export function sanitizeHtml(html: string): string {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  for (const el of Array.from(doc.body.querySelectorAll(DROP))) el.remove();
  for (const el of Array.from(doc.body.querySelectorAll('*'))) {
    for (const a of Array.from(el.attributes)) {
      const n = a.name.toLowerCase();
      const v = a.value.trim().toLowerCase();
      if (n.startsWith('on') || ((n === 'href' || n === 'src' || n === 'action') && /^(javascript|vbscript|data:text)/.test(v))) {
        el.removeAttribute(a.name);
      }
    }
  }
  return doc.body.innerHTML;
}
