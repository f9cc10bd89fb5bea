import { $, api, signIn, status } from './common.js';

addEventListener('DOMContentLoaded', () => {
  $('#signin-form').addEventListener('submit', async ev => {
    ev.preventDefault();
    const k = $('#key').value.trim();
    try {
      // Any authenticated read proves the key; query needs only state:read.
      await api('/api/v1/states/query', { method: 'POST', body: { limit: 1 }, token: k });
      signIn(k);
      location.href = '/console/states';
    } catch (e) {
      status(e.status === 401 ? 'That key is not valid for this server.' : e.message, true);
    }
  });
});
