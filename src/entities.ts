// Every table the gateway owns, for the ORM, the migrator and its CLI.
import { ConversationSchema } from './conversations/conversation.entity.ts';
import { MessageSchema } from './messages/message.entity.ts';
import { UserSchema } from './users/user.entity.ts';

export const entities = [UserSchema, ConversationSchema, MessageSchema];
