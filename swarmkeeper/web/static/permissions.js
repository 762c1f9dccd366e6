// The permission flags the page's buttons need (ids from swarmkeeper/api/permissions.py), and the
// reason a button shows when the user's role lacks its flag.

export const FLAGS = Object.freeze({
  view_backends_list: 'View Backends List',
  add_remove_backends: 'Add/Remove Backends',
  edit_backends: 'Edit Backends',
  restart_backends: 'Restart Backends',
  toggle_backends: 'Toggle Backends',
  control_mem_clean: 'Control Memory Cleaning',
  view_logs: 'View Logs',
  fundamental_generate_tab_access: 'Fundamental Generate Tab Access',
});

/** '' when the user holds the flag, else the reason to show on the disabled control. */
export function lacking(api, flag) {
  if (api.may(flag)) return '';
  return `Your account cannot do this: it needs the "${FLAGS[flag] ?? flag}" permission (${flag}).`;
}

/** One line naming what the user cannot do here, or '' if they can do everything. */
export function permissionSummary(api) {
  const missing = Object.keys(FLAGS).filter((flag) => flag !== 'fundamental_generate_tab_access' && !api.may(flag));
  if (!missing.length) return '';
  const names = missing.map((flag) => `"${FLAGS[flag]}"`).join(', ');
  return `Some buttons are disabled because your account lacks these permissions: ${names}.`;
}
