// Unit tests of the words of a class's life (ui/waiting.js, ui/ended.js, messages.js): what a
// waiting student reads, how long someone waited or attended, and the refusals of the waiting room.
// No browser: these modules touch no DOM when imported.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitingText, waitedFor } from '../../web-client/js/ui/waiting.js';
import { duration } from '../../web-client/js/ui/ended.js';
import { ERROR_TEXT, isJoinRefusal, refusalTitle } from '../../web-client/js/messages.js';

describe('waiting room and end screen words', () => {
  it('a waiting student is told why she waits', () => {
    assert.equal(waitingText('waiting_room').title, 'Waiting for the teacher to let you in…');
    assert.match(waitingText('locked').text, /^The teacher has locked the class\. /);
    assert.doesNotMatch(waitingText('waiting_room').text, /locked/);
    assert.equal(waitingText('ended').title, 'This lesson has ended');
    assert.match(waitingText('ended').text, /starts the class again/);
  });

  it('how long someone waited', () => {
    assert.equal(waitedFor(1_000, 1_000), 'just now');
    assert.equal(waitedFor(1_000, 59_000), 'just now');
    assert.equal(waitedFor(0, 60_000), '1 minute');
    assert.equal(waitedFor(0, 5 * 60_000 + 10), '5 minutes');
    assert.equal(waitedFor(10_000, 0), 'just now', 'a clock a little behind the server');
  });

  it('how long someone attended', () => {
    assert.equal(duration(0), 'less than a minute');
    assert.equal(duration(29), 'less than a minute');
    assert.equal(duration(60), '1 minute');
    assert.equal(duration(45 * 60), '45 minutes');
    assert.equal(duration(65 * 60), '1 h 05 min');
  });

  it('declined and waiting_timeout are join refusals with their own words', () => {
    for (const code of ['declined', 'waiting_timeout']) {
      assert.ok(isJoinRefusal(code, false));
      assert.ok(ERROR_TEXT[code].length > 20);
    }
    assert.equal(refusalTitle('declined'), 'The teacher did not let you in');
    assert.equal(refusalTitle('waiting_timeout'), 'Nobody let you in');
  });
});
