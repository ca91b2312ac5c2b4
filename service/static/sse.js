/* Server-sent events read from a fetch() response.
 *
 * A browser EventSource cannot send an Authorization header, and an API key must never go into a URL, so the
 * dashboard follows a job's event stream with fetch() and parses the text/event-stream format itself
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation): lines end in LF,
 * CRLF or CR; a blank line dispatches the event; "event:" names it, "data:" lines are joined with LF, "id:" is kept,
 * lines starting with ":" are comments (keep-alives); one space after the colon is dropped.
 */
"use strict";

/** An incremental parser: feed() text chunks as they arrive; onEvent({event, data, id}) per complete event. */
function EventStreamParser(onEvent) {
  let buffer = "";
  let event = "";
  let data = [];
  let id = "";
  let lastWasCR = false;

  function line(text) {
    if (text === "") {
      if (data.length > 0) onEvent({ event: event || "message", data: data.join("\n"), id: id });
      event = "";
      data = [];
      return;
    }
    if (text.charAt(0) === ":") return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.charAt(0) === " ") value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }

  this.feed = function (chunk) {
    buffer += chunk;
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charAt(i);
      if (c === "\n" && lastWasCR && i === start) {  // the LF of a CRLF split across two chunks
        start = i + 1;
        lastWasCR = false;
        continue;
      }
      if (c === "\n" || c === "\r") {
        line(buffer.slice(start, i));
        lastWasCR = c === "\r" && i === buffer.length - 1;  // its LF, if any, comes with the next chunk
        if (c === "\r" && buffer.charAt(i + 1) === "\n") i++;
        start = i + 1;
      }
    }
    buffer = buffer.slice(start);
  };
}

/** Read `response`'s body to its end, calling onEvent per event. Resolves when the stream ends or is aborted. */
async function readEventStream(response, onEvent) {
  const parser = new EventStreamParser(onEvent);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.feed(decoder.decode(value, { stream: true }));
  }
  parser.feed(decoder.decode());
}
