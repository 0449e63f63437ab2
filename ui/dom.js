// DOM building without innerHTML: every value reaches the page as a text node or an attribute
// set with setAttribute, so nothing the API returns is ever parsed as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * `h('td', { class: 'num', 'data-col': 'state' }, 'active', child)`: an element with attributes
 * and children; strings and numbers become text nodes, null and undefined are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** The same for SVG elements (they need their namespace). */
export function s(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

function fill(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
  return el;
}

/** Shows `text` in a message element, or hides it when text is empty. */
export function showMessage(el, text) {
  el.textContent = text ?? '';
  el.hidden = !text;
}
