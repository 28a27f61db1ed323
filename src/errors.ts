/** An error a user can act on: the CLI prints its message as one line, the server turns it into a 4xx. */
export class LmpError extends Error {
  constructor(message: string, readonly status = 400) {
    super(message)
  }
}
