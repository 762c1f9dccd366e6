// A confirmation dialog (the native <dialog>: modal, Escape cancels, focus stays inside).

import {byId} from './dom.js';

/**
 * Ask the user to confirm; resolves true for OK. Focus starts on Cancel, the safe answer.
 * @param {{title: string, message: string, warning?: string, confirmText?: string, danger?: boolean}} options
 */
export function confirmAction({title, message, warning = '', confirmText = 'OK', danger = false}) {
  const dialog = byId('confirm-dialog');
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
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), {once: true});
    dialog.showModal();
    byId('confirm-cancel').focus();
  });
}
