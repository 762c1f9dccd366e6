// A confirmation dialog (the native <dialog>: modal, Escape cancels, focus stays inside).

import {byId} from './dom.js';

/** Answers the showing on screen, or the one just closed whose `close` event has not come yet. */
let settle = null;
let listening = false;

/** Give the pending showing its answer (final once the dialog closed), once. */
function answer(dialog) {
  const done = settle;
  settle = null;
  if (done) done(dialog.returnValue === 'ok');
}

/**
 * Ask the user to confirm; resolves true for OK. Focus starts on Cancel, the safe answer.
 * The browser fires `close` in a later task, so a dialog cancelled with Escape and asked again at
 * once (a fast keyboard, a busy machine) may see the first showing's `close` while the second is
 * open: the first is answered when the second opens, and a `close` while open is not an answer.
 * @param {{title: string, message: string, warning?: string, confirmText?: string, danger?: boolean}} options
 */
export function confirmAction({title, message, warning = '', confirmText = 'OK', danger = false}) {
  const dialog = byId('confirm-dialog');
  if (!listening) {
    dialog.addEventListener('close', () => { if (!dialog.open) answer(dialog); });
    listening = true;
  }
  answer(dialog);
  byId('confirm-title').textContent = title;
  byId('confirm-message').textContent = message;
  const warningLine = byId('confirm-warning');
  warningLine.textContent = warning;
  warningLine.hidden = !warning;
  const ok = byId('confirm-ok');
  ok.textContent = confirmText;
  ok.classList.toggle('danger', danger);
  dialog.returnValue = 'cancel';
  return new Promise((resolve) => {
    settle = resolve;
    dialog.showModal();
    byId('confirm-cancel').focus();
  });
}
