import { createConnection, type Socket } from 'node:net';

/**
 * One open connection to BIRD's control socket, speaking what birdc speaks: a command per line;
 * each reply line starts with a four-digit code, followed by "-" when more lines of the reply
 * follow and by " " on its last line (a line starting with a space continues the previous one).
 * The bgp benchmark polls a receiving BIRD's route count through it every few milliseconds: a
 * `birdc` per poll costs a process start (several milliseconds of the two cores BIRD and the
 * others share), so polls had to be 20 ms apart, and BIRD's time came out up to 20 ms late.
 */
export class BirdControl {
  private buffered = '';
  private waiting: ((reply: string) => void) | undefined;
  private failed: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      this.deliver();
    });
    socket.on('error', (err) => { this.failed = err; });
  }

  /** Connects and reads BIRD's greeting ("0001 BIRD 2.0.12 ready."). */
  static async open(path: string, timeoutMs = 5_000): Promise<BirdControl> {
    const socket = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const control = new BirdControl(socket);
    const greeting = await control.reply(timeoutMs);
    if (!greeting.startsWith('0001 ')) {
      control.close();
      throw new Error(`BIRD's control socket ${path} greeted with ${JSON.stringify(greeting.slice(0, 80))}`);
    }
    return control;
  }

  /** Sends one command and resolves with its whole reply. */
  async command(text: string, timeoutMs = 5_000): Promise<string> {
    this.socket.write(`${text}\n`);
    return this.reply(timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }

  private reply(timeoutMs: number): Promise<string> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`BIRD did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = (reply) => {
        clearTimeout(timer);
        resolve(reply);
      };
      this.deliver();
    });
  }

  /** Hands the first complete reply in the buffer to the waiting caller. */
  private deliver(): void {
    if (this.waiting === undefined) return;
    const end = /^\d{4} .*\n/m.exec(this.buffered);
    if (end === null) return;
    const cut = end.index + end[0].length;
    const reply = this.buffered.slice(0, cut);
    this.buffered = this.buffered.slice(cut);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting(reply);
  }
}
