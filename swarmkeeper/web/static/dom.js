// Tiny DOM helpers. Text from the server or the user always goes in as text, never as markup.

/**
 * Make an element. `props`: `class`, `text`, `on` (event handlers), `dataset`, booleans and
 * non-string values as properties (`hidden`, `checked`, `disabled`), everything else as attributes.
 * Children are elements or strings (strings become text nodes).
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    applyProp(element, key, value);
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

function applyProp(element, key, value) {
  if (value === undefined || value === null) return;
  if (key === 'class') element.className = value;
  else if (key === 'text') element.textContent = String(value);
  else if (key === 'on') Object.entries(value).forEach(([name, fn]) => element.addEventListener(name, fn));
  else if (key === 'dataset') Object.assign(element.dataset, value);
  else if (typeof value !== 'string') element[key] = value;
  else element.setAttribute(key, value);
}

export function byId(id) {
  return document.getElementById(id);
}

/** Enable a control, or disable it and say why (tooltip and accessible description). */
export function setAvailable(control, reason = '') {
  control.disabled = Boolean(reason);
  if (reason) {
    control.title = reason;
    control.dataset.reason = reason;
  } else {
    control.title = control.dataset.help || '';
    delete control.dataset.reason;
  }
}

/** Show a message in an element (hidden when empty); `kind` is `error` or `ok`. */
export function say(element, text, kind = 'ok') {
  element.textContent = text || '';
  element.dataset.kind = kind;
  element.hidden = !text;
}

let uniqueCounter = 0;
/** A page-unique id for label/input pairs. */
export function uniqueId(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}
