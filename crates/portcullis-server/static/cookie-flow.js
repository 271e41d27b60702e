  // The cookie flow's client side, shared by this server's pages (routes::meta splices it into
  // each page's inline script, so that the CSP allows no script but the page's own).

  // The CSRF token is the one cookie JavaScript may read; sent back as a header on unsafe methods.
  function csrfToken() {
    for (const part of document.cookie.split(";")) {
      const [name, ...rest] = part.trim().split("=");
      if (name === "portcullis_csrf") return rest.join("=");
    }
    return "";
  }

  // A problem+json answer as a line for the page: its detail and code.
  async function problemText(res) {
    try {
      const p = await res.json();
      if (p && (p.detail || p.code)) {
        return `${p.detail || p.title || "Request failed"}${p.code ? ` (${p.code})` : ""}`;
      }
    } catch (_) { /* not JSON */ }
    return `Request failed: HTTP ${res.status}`;
  }

  // A request with the cookies, and the CSRF header on anything but GET.
  function send(method, path, body) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const csrf = csrfToken();
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    return fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  }

  // One refresh at a time: a refresh token rotates on use, so two at once would look like reuse.
  // No body: the server takes the refresh cookie, and only with X-CSRF-Token equal to the CSRF
  // cookie (which `send` adds), so that no other site can refresh — or plant — a session.
  let refreshing = null;
  function refresh() {
    if (!csrfToken()) return Promise.resolve(false); // no cookie session to refresh
    refreshing ??= send("POST", "/auth/refresh")
      .then((res) => res.ok)
      .catch(() => false)
      .finally(() => { refreshing = null; });
    return refreshing;
  }
