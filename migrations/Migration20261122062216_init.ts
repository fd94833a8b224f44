import { Migration } from '@mikro-orm/migrations';

export class Migration20261122062216_init extends Migration {
  override name = 'Migration20261122062216_init';

  override up(): void | Promise<void> {
    this.addSql(`create table "users" ("id" varchar(255) not null, "created_at" timestamptz not null default now(), primary key ("id"));`);

    this.addSql(
      `create table "conversations" ("id" uuid not null, "user_id" varchar(255) not null, "title" varchar(200) null, "last_seq" bigint not null default '0', "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`create index "conversations_user_id_updated_at_index" on "conversations" ("user_id", "updated_at" desc, "id" desc);`);

    this.addSql(
      `create table "messages" ("id" uuid not null, "conversation_id" uuid not null, "user_id" varchar(255) not null, "seq" bigint not null, "role" text not null, "status" text not null default 'complete', "content" text not null, "metadata" jsonb null, "client_message_id" varchar(100) null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "messages" add constraint "messages_conversation_id_seq_unique" unique ("conversation_id", "seq");`);
    this.addSql(
      `create unique index "messages_user_id_client_message_id_unique" on "messages" ("user_id", "client_message_id") where "client_message_id" is not null;`,
    );

    this.addSql(
      `alter table "conversations" add constraint "conversations_user_id_foreign" foreign key ("user_id") references "users" ("id") on delete cascade;`,
    );

    this.addSql(
      `alter table "messages" add constraint "messages_conversation_id_foreign" foreign key ("conversation_id") references "conversations" ("id") on delete cascade;`,
    );
    this.addSql(`alter table "messages" add constraint "messages_role_check" check ("role" in ('user', 'assistant', 'system'));`);
    this.addSql(
      `alter table "messages" add constraint "messages_status_check" check ("status" in ('complete', 'streaming', 'stopped', 'failed'));`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "conversations" drop constraint "conversations_user_id_foreign";`);
    this.addSql(`alter table "messages" drop constraint "messages_conversation_id_foreign";`);

    this.addSql(`drop table if exists "users" cascade;`);
    this.addSql(`drop table if exists "conversations" cascade;`);
    this.addSql(`drop table if exists "messages" cascade;`);
  }
}
