// Reading Server-Sent Events (gateway/sse-parser.ts, what the web UI and the CLI read the task events
// with): the WHATWG rules on chunks cut anywhere.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser } from '../../src/gateway/sse-parser';

test('events, data lines joined, ids kept, comments and retry read, in chunks cut anywhere', () => {
  const stream = 'retry: 2000\n\n: a comment\nid: 0a\nevent: ready\ndata: {"cursor":"0a"}\n\nevent: task\ndata: {"id":1}\n\nid: 0b\r\ndata: one\r\ndata: two\r\n\r\n: heartbeat\nid: 0c\n\n';
  for (let cut = 0; cut <= stream.length; cut++) {
    const parser = new SseParser();
    const events = [...parser.push(stream.slice(0, cut)), ...parser.push(stream.slice(cut))];
    assert.deepEqual(
      events.map((e) => [e.event, e.data, e.lastEventId]),
      [
        ['ready', '{"cursor":"0a"}', '0a'],
        ['task', '{"id":1}', '0a'],
        ['message', 'one\ntwo', '0b'],
      ],
      `cut at ${cut}`,
    );
    assert.equal(parser.retryMs, 2000);
    // A block with an id and no data moves the last event id on, without an event.
    assert.equal(parser.lastEventId, '0c');
  }
});

test('a lone CR ends a line, but not before the LF that may follow it in the next chunk', () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push('data: a\r'), []);
  assert.deepEqual(
    parser.push('\n\r\n').map((e) => e.data),
    ['a'],
  );
  // CR alone ends lines too, once what follows it is known.
  assert.deepEqual(parser.push('data: b\r\r'), []);
  assert.deepEqual(
    parser.push(': next').map((e) => e.data),
    ['b'],
  );
});
