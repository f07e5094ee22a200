// StartThrottle: at most `limit` starts in any window of THROTTLE_WINDOW_MS, and how long until the next may be made.
import t from 'tap';
import { StartThrottle, THROTTLE_WINDOW_MS } from '../src/server/start-throttle.js';

t.test('limit starts in any window, then the wait until the oldest leaves it', async (t) => {
  const throttle = new StartThrottle(2);
  t.equal(throttle.take(1000), 0, 'the first start');
  t.equal(throttle.take(1100), 0, 'the second');
  t.equal(throttle.take(1200), 1000 + THROTTLE_WINDOW_MS - 1200, 'the third waits for the first to be a window old');
  t.equal(throttle.take(1999), 1, 'still 1 ms to go');
  t.equal(throttle.take(2000), 0, 'a window after the first: allowed');
  t.equal(throttle.take(2050), 1100 + THROTTLE_WINDOW_MS - 2050, 'and the next waits for the second');
  t.equal(throttle.take(2100), 0, 'allowed once the second has left the window');
});

t.test('a refused start is not counted', async (t) => {
  const throttle = new StartThrottle(1);
  t.equal(throttle.take(0), 0);
  for (let now = 1; now < THROTTLE_WINDOW_MS; now += 100) t.ok(throttle.take(now) > 0, `refused at ${now}`);
  t.equal(throttle.take(THROTTLE_WINDOW_MS), 0, 'allowed a window after the one start made');
});
