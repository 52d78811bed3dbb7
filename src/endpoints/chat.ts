import type { Gate } from '../handshake/gate.js';
import type { ChatService } from '../chat/chat-service.js';

/** The chat on `/chat`: a bearer credential is required; the chat service handles the frames. */
export function registerChatEndpoint(gate: Gate, chat: ChatService): void {
  gate.route('/chat', { requirement: 'required' }, chat.handle);
}
