// The web page's behaviour: four forms calling the JSON API with fetch.
// Every rule is the API's: the page shows the errors the API returns, next to
// the field each one names. Text from the API is always set as text, never as HTML.
"use strict";

(function () {
  const ACCEPT = "application/json; version=1";

  // The token of a claimed inbox travels only in the Authorization header, never in a URL.
  async function callApi(method, path, body, signal, token) {
    const options = { method: method, headers: { Accept: ACCEPT }, signal: signal };
    if (token) options.headers.Authorization = "Bearer " + token;
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = { detail: "The service answered " + response.status + " without a JSON body." };
    }
    return { status: response.status, headers: response.headers, data: data };
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error, .form-error").forEach(function (node) {
      node.hidden = true;
      node.textContent = "";
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (node) {
      node.removeAttribute("aria-invalid");
    });
  }

  // Puts each message of an error body next to the field it names; anything
  // else (a "detail", an unknown field) goes to the form's own error line.
  function showErrors(form, prefix, data, response) {
    const general = [];
    let firstInvalid = null;
    Object.keys(data || {}).forEach(function (name) {
      const messages = [].concat(data[name]).join(" ");
      const input = document.getElementById(prefix + "-" + name);
      const slot = document.getElementById(prefix + "-" + name + "-error");
      if (input && slot) {
        slot.textContent = messages;
        slot.hidden = false;
        input.setAttribute("aria-invalid", "true");
        firstInvalid = firstInvalid || input;
      } else if (name === "detail") {
        general.push(messages);
      } else if (name !== "request_id") {
        general.push(name + ": " + messages);
      }
    });
    if (response && response.headers.get("Retry-After")) {
      general.push("Try again in " + response.headers.get("Retry-After") + " seconds.");
    }
    if (general.length) {
      const slot = document.getElementById(prefix + "-form-error");
      slot.textContent = general.join(" ");
      slot.hidden = false;
    }
    if (firstInvalid) firstInvalid.focus();
  }

  function showUnreachable(prefix) {
    const slot = document.getElementById(prefix + "-form-error");
    slot.textContent = "The service could not be reached. Check your connection and try again.";
    slot.hidden = false;
  }

  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

  function describeTime(date) {
    const seconds = Math.round((date.getTime() - Date.now()) / 1000);
    const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size || unit === "second") {
        return relative.format(Math.round(seconds / size), unit);
      }
    }
    return "";
  }

  // "28 Nov 2026, 22:07:08 (in 1 minute; 2026-11-28 22:07:08 UTC)"
  function expiryNode(iso) {
    const date = new Date(iso);
    const wrapper = element("span", "expiry");
    const time = element("time", "", date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }));
    time.dateTime = iso;
    const utc = iso.replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, " UTC");
    wrapper.append(time, " (" + describeTime(date) + "; " + utc + ")");
    return wrapper;
  }

  function isExpired(iso) {
    return new Date(iso).getTime() <= Date.now();
  }

  // One handed-out message, {"id", "text"}, as a list item.
  function messageItem(message) {
    const item = element("li");
    item.dataset.id = message.id;
    item.append(element("span", "message-id", "#" + message.id), element("span", "message-text", message.text));
    return item;
  }

  function replaceResult(id, nodes) {
    const result = document.getElementById(id);
    result.replaceChildren.apply(result, nodes);
  }

  // Send ---------------------------------------------------------------------
  const sendForm = document.getElementById("send-form");
  sendForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    clearErrors(sendForm);
    // The last answer goes at once, so that an old result is never read as this one's.
    replaceResult("send-result", []);
    const body = {
      username: sendForm.elements.username.value,
      text: sendForm.elements.text.value,
    };
    // An empty lifetime means the default; anything else goes to the API as typed, for it to judge.
    const timeout = sendForm.elements.timeout.value.trim();
    if (timeout !== "") body.timeout = timeout;
    let sent;
    try {
      sent = await callApi("POST", sendForm.getAttribute("action"), body);
    } catch (error) {
      showUnreachable("send");
      return;
    }
    if (sent.status !== 201) {
      replaceResult("send-result", []);
      showErrors(sendForm, "send", sent.data, sent);
      return;
    }
    const id = sent.data.id;
    const summary = element("p", "success", "Message " + id + " sent to " + body.username + ".");
    const nodes = [summary];
    try {
      const read = await callApi("GET", sent.headers.get("Location") || "/chat/" + id);
      if (read.status === 200) {
        const expiry = element("p", "", isExpired(read.data.expiration_date) ? "It expired at " : "It expires at ");
        expiry.id = "send-expiry";
        expiry.append(expiryNode(read.data.expiration_date), ".");
        nodes.push(expiry);
      }
    } catch (error) {
      // The message is stored; only its expiry could not be shown.
    }
    const lookup = element("button", "link-button", "Look up message " + id);
    lookup.type = "button";
    lookup.addEventListener("click", function () {
      const field = document.getElementById("lookup-id");
      field.value = id;
      field.focus();
    });
    nodes.push(lookup);
    replaceResult("send-result", nodes);
    sendForm.elements.text.value = "";
  });

  // Collect ------------------------------------------------------------------
  const collectForm = document.getElementById("collect-form");
  collectForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    clearErrors(collectForm);
    replaceResult("collect-result", []);
    const username = collectForm.elements.username.value;
    if (username === "") {
      showErrors(collectForm, "collect", { username: ["Enter the username whose inbox to collect."] });
      return;
    }
    if (username === "." || username === "..") {
      // Browsers resolve /chats/. and /chats/.. as directories, so the request cannot name this inbox.
      showErrors(collectForm, "collect", { username: ["This inbox cannot be collected from a browser."] });
      return;
    }
    let collected;
    try {
      collected = await callApi("GET", "/chats/" + encodeURIComponent(username), undefined, undefined, document.getElementById("collect-token").value.trim());
    } catch (error) {
      showUnreachable("collect");
      return;
    }
    if (collected.status !== 200 || !Array.isArray(collected.data)) {
      replaceResult("collect-result", []);
      let errors = collected.data;
      if (collected.status === 404) errors = { username: [collected.data.detail] };
      if (collected.status === 401) errors = { token: [collected.data.detail] };
      showErrors(collectForm, "collect", errors, collected);
      return;
    }
    const messages = collected.data;
    if (messages.length === 0) {
      replaceResult("collect-result", [element("p", "", "No live messages for " + username + ".")]);
      return;
    }
    const heading = element(
      "p",
      "success",
      messages.length === 1
        ? "Collected 1 message for " + username + ". It is now expired: nobody can collect it again."
        : "Collected " + messages.length + " messages for " + username +
          ". They are now expired: nobody can collect them again."
    );
    const list = element("ol", "messages");
    messages.forEach(function (message) {
      list.append(messageItem(message));
    });
    const nodes = [heading, list];
    if (collected.headers.get("X-More-Messages") === "true") {
      nodes.push(element("p", "notice", "More messages are waiting: collect again to get them."));
    }
    replaceResult("collect-result", nodes);
  });

  // Watch --------------------------------------------------------------------
  // Long-polls with a lease: what arrives is shown, then acknowledged. A lease
  // whose answer never reached the page (stopped, connection lost) is not
  // acknowledged, so its messages return to the inbox when it ends.
  const WATCH_WAIT_SECONDS = 25;
  const WATCH_LEASE_SECONDS = 30;
  const watchForm = document.getElementById("watch-form");
  const watchStart = document.getElementById("watch-start");
  const watchStop = document.getElementById("watch-stop");
  const watchState = document.getElementById("watch-state");
  const watchList = document.getElementById("watch-messages");
  const watchToken = document.getElementById("watch-token");
  let watching = null;

  function setWatchState(state, text) {
    watchState.dataset.state = state;
    watchState.textContent = text;
    watchState.hidden = false;
  }

  function pause(milliseconds, session) {
    return new Promise(function (resolve) {
      const timer = setTimeout(resolve, milliseconds);
      session.controller.signal.addEventListener("abort", function () {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  // The token is read from its field once, when watching starts, and kept only
  // in this closure for the requests that need it: never in a URL or in storage.
  async function watchInbox(username, token, session) {
    const inbox = "/chats/" + encodeURIComponent(username);
    let retryIn = 1000;
    while (!session.stopped) {
      setWatchState("waiting", "Waiting for messages to " + username + "…");
      let leased;
      try {
        leased = await callApi(
          "POST",
          inbox + "/leases",
          { seconds: WATCH_LEASE_SECONDS, wait: WATCH_WAIT_SECONDS },
          session.controller.signal,
          token
        );
      } catch (error) {
        if (session.stopped) return;
        setWatchState("reconnecting", "Connection lost; reconnecting…");
        await pause(retryIn, session);
        retryIn = Math.min(retryIn * 2, 15000);
        continue;
      }
      if (leased.status >= 500 || leased.status === 429) {
        setWatchState("reconnecting", "The service is busy or unavailable; reconnecting…");
        await pause(retryIn, session);
        retryIn = Math.min(retryIn * 2, 15000);
        continue;
      }
      retryIn = 1000;
      if (leased.status !== 201 && leased.status !== 200) {
        stopWatching();
        let errors = leased.data;
        if (leased.status === 404) errors = { username: [leased.data.detail] };
        if (leased.status === 401) errors = { token: [leased.data.detail] };
        showErrors(watchForm, "watch", errors, leased);
        return;
      }
      if (leased.status === 200) continue;
      leased.data.messages.forEach(function (message) {
        watchList.append(messageItem(message));
      });
      const count = leased.data.messages.length;
      setWatchState("received", count === 1 ? "Received 1 message." : "Received " + count + " messages.");
      try {
        // Shown, so acknowledged: the messages are expired now. Not tied to
        // Stop: what is on screen is acknowledged even if Stop comes first.
        await callApi("DELETE", inbox + "/leases/" + encodeURIComponent(leased.data.lease), undefined, undefined, token);
      } catch (error) {
        // Unacknowledged, they return to the inbox when the lease ends.
      }
    }
  }

  function stopWatching() {
    if (watching) {
      watching.stopped = true;
      watching.controller.abort();
      watching = null;
    }
    watchStop.hidden = true;
    watchStart.hidden = false;
    watchForm.elements.username.disabled = false;
    watchToken.disabled = false;
  }

  watchForm.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors(watchForm);
    const username = watchForm.elements.username.value;
    if (username === "") {
      showErrors(watchForm, "watch", { username: ["Enter the username whose inbox to watch."] });
      return;
    }
    if (username === "." || username === "..") {
      showErrors(watchForm, "watch", { username: ["This inbox cannot be watched from a browser."] });
      return;
    }
    stopWatching();
    watchList.replaceChildren();
    watching = { stopped: false, controller: new AbortController() };
    watchStart.hidden = true;
    watchStop.hidden = false;
    watchForm.elements.username.disabled = true;
    watchToken.disabled = true;
    watchInbox(username, watchToken.value.trim(), watching);
  });

  watchStop.addEventListener("click", function () {
    stopWatching();
    setWatchState("stopped", "Stopped. Messages that had not arrived stay in the inbox.");
    watchStart.focus();
  });

  // Look up ------------------------------------------------------------------
  const lookupForm = document.getElementById("lookup-form");
  lookupForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    clearErrors(lookupForm);
    replaceResult("lookup-result", []);
    const id = lookupForm.elements.id.value.trim();
    if (!/^[0-9]+$/.test(id)) {
      replaceResult("lookup-result", []);
      showErrors(lookupForm, "lookup", { id: ["Enter a message id: the number shown when the message was sent."] });
      return;
    }
    let found;
    try {
      found = await callApi("GET", "/chat/" + id, undefined, undefined, document.getElementById("lookup-token").value.trim());
    } catch (error) {
      showUnreachable("lookup");
      return;
    }
    if (found.status !== 200) {
      replaceResult("lookup-result", []);
      // A message of a claimed inbox is "not found" without its token, exactly like a missing one.
      const notFound = [found.data.detail, "If it was sent to a claimed inbox, enter that inbox's token."];
      showErrors(lookupForm, "lookup", found.status === 404 ? { id: notFound } : found.data, found);
      return;
    }
    const message = found.data;
    const details = element("dl", "message");
    const expired = isExpired(message.expiration_date);
    const expiry = element("dd");
    expiry.append(expiryNode(message.expiration_date));
    details.append(
      element("dt", "", "To"), element("dd", "", message.username),
      element("dt", "", "Message"), element("dd", "message-text", message.text),
      element("dt", "", expired ? "Expired" : "Expires"), expiry
    );
    const heading = element("p", "success", "Message " + id + (expired ? " (expired)" : " (live)"));
    replaceResult("lookup-result", [heading, details]);
  });

  // Claim --------------------------------------------------------------------
  // The token is shown once, here: the service keeps only its hash.
  async function copyToken(field, status) {
    try {
      await navigator.clipboard.writeText(field.value);
    } catch (error) {
      // Without the asynchronous clipboard (an insecure context), the selection is copied.
      field.select();
      if (!document.execCommand("copy")) {
        status.textContent = "Copying failed: select the token and copy it yourself.";
        return;
      }
    }
    status.textContent = "Copied to the clipboard.";
  }

  const claimForm = document.getElementById("claim-form");
  claimForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    clearErrors(claimForm);
    replaceResult("claim-result", []);
    const username = claimForm.elements.username.value;
    let claimed;
    try {
      claimed = await callApi("POST", claimForm.getAttribute("action"), { username: username });
    } catch (error) {
      showUnreachable("claim");
      return;
    }
    if (claimed.status !== 201) {
      showErrors(claimForm, "claim", claimed.status === 409 ? { username: [claimed.data.detail] } : claimed.data, claimed);
      return;
    }
    const summary = element("p", "success", "You have claimed the inbox " + claimed.data.username + ".");
    const warning = element(
      "p",
      "warning",
      "Copy this token now and keep it where you keep passwords. It is shown only this once: the service " +
        "cannot show it again, and without it nobody, you included, can collect this inbox. Anyone who has it can."
    );
    warning.id = "claim-warning";
    const label = element("label", "", "Token for " + claimed.data.username);
    label.htmlFor = "claim-token";
    const field = element("input");
    field.id = "claim-token";
    field.type = "text";
    field.readOnly = true;
    field.value = claimed.data.token;
    field.setAttribute("autocomplete", "off");
    field.setAttribute("spellcheck", "false");
    field.setAttribute("aria-describedby", "claim-warning");
    const copy = element("button", "", "Copy token");
    copy.type = "button";
    const copyStatus = element("p", "hint");
    copyStatus.id = "claim-copy-status";
    copyStatus.setAttribute("aria-live", "polite");
    copy.addEventListener("click", function () {
      copyToken(field, copyStatus);
    });
    const tokenField = element("div", "field token-field");
    tokenField.append(label, field, copy, copyStatus);
    replaceResult("claim-result", [summary, warning, tokenField]);
    field.focus();
    field.select();
  });
})();
