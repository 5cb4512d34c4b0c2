// Key Vault of the app:
//   - OutlookApiClientSecret (secret): the client secret of the Entra app registration;
//   - TokenEncryptionKek (key, RSA 3072): the key-encryption key. The data keys that
//     encrypt every user's token cache at rest (AES-256-GCM) are stored only wrapped by
//     this key (envelope encryption): the app setting TokenEncryptionKeyWrapped holds
//     `kid:keyVersion:base64url(RSA-OAEP-256(data key))` entries, and the app unwraps them
//     once per process with Key Vault's unwrapKey (its identity has Key Vault Crypto User
//     on this key only). The plain data key never leaves Key Vault's unwrap call and the
//     app's memory: it is not in a secret, an app setting or an admin's shell.
//   - TokenEncryptionKey (secret, optional, legacy): the plain key list of deployments made
//     before envelope encryption, kept only while their token caches are re-sealed
//     (docs/operations.md, "Rotating the encryption key").
//
// Authorization is Azure RBAC (no access policies): app/rbac.bicep grants the app's
// identity Key Vault Secrets User (the client secret reference) and Key Vault Crypto User
// on the key, and the admin Secrets Officer and Crypto Officer. Soft delete and purge
// protection mean a deleted key, secret or vault can be recovered and cannot be destroyed
// before the retention period ends; losing the key-encryption key would make every stored
// token cache unreadable and force every user to reconnect.
//
// Network: with vnetEnabled (main.bicep, the default) public network access is disabled
// and the vault is reached through its private endpoint; App Service resolves the Key
// Vault reference through the app's VNet integration.
//
// A secret is written only when its parameter is not empty, so re-running the
// deployment without the values (the usual case: the client secret is set once with
// `az keyvault secret set`, docs/deploy.md) never blanks or replaces it. The app
// settings reference the versionless secret URI, so a new version is picked up by the
// app within 24 hours, or at once after a restart. Deploying the key again does not
// make a new version (Key Vault creates a key only when it does not exist).

param name string
param location string
param tags object = {}

@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@secure()
@description('Client secret value; empty: leave the secret as it is.')
param outlookApiClientSecret string = ''

@secure()
@description('Legacy plain token encryption key list (before envelope encryption); empty: leave the secret as it is.')
param tokenEncryptionKey string = ''

// Network access (main.bicep passes them from vnetEnabled); the defaults are the VNet
// setup that infra/check.sh scans: no public endpoint, default deny.
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Disabled'

@allowed([
  'Allow'
  'Deny'
])
param networkDefaultAction string = 'Deny'

var clientSecretName = 'OutlookApiClientSecret'
var encryptionKeyName = 'TokenEncryptionKey'
var keyEncryptionKeyName = 'TokenEncryptionKek'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: networkDefaultAction
    }
  }
}

resource clientSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(outlookApiClientSecret)) {
  // checkov:skip=CKV_AZURE_114: False positive: contentType is set below. The resource is conditional (if ...), and checkov's Bicep parser nests the body of a conditional resource one level deeper, so it does not see properties.contentType.
  // checkov:skip=CKV_AZURE_41: No expiry on the vault entry: the client secret's real expiry is set in Entra ID (24 months in the admin guide) and is rotated by hand (docs/operations.md). An "exp" here would make the Key Vault reference stop resolving on that date and take the app down with it.
  parent: vault
  name: clientSecretName
  properties: {
    value: outlookApiClientSecret
    contentType: 'text/plain; Entra app registration client secret'
  }
}

resource encryptionKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(tokenEncryptionKey)) {
  // checkov:skip=CKV_AZURE_114: False positive: contentType is set below (checkov does not see the properties of a conditional resource, see clientSecret).
  // checkov:skip=CKV_AZURE_41: No expiry: the encryption key must stay readable for as long as any token cache is encrypted with it. Keys are rotated on purpose (prepend a new key, outlook-sync rotate-key, drop the old one; docs/operations.md), never by a date that would lock every user out.
  parent: vault
  name: encryptionKeyName
  properties: {
    value: tokenEncryptionKey
    contentType: 'text/plain; keyid:base64url(32 bytes)[,keyid:...]'
  }
}

// The key-encryption key of the token caches' data keys (envelope encryption).
resource keyEncryptionKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  // checkov:skip=CKV_AZURE_40: No expiry: the data keys stay wrapped by this key version for as long as any token cache is sealed with them; an expiry date would stop unwrapKey and lock every user out. It is rotated on purpose (new version, re-wrap, docs/operations.md).
  // checkov:skip=CKV_AZURE_112: A software-protected RSA key (standard vault): an HSM-backed key needs the Premium tier. The key never leaves Key Vault either way, and it only wraps 32-byte data keys.
  parent: vault
  name: keyEncryptionKeyName
  properties: {
    kty: 'RSA'
    keySize: 3072
    keyOps: [
      'wrapKey'
      'unwrapKey'
    ]
    attributes: {
      enabled: true
      exportable: false
    }
  }
}

output name string = vault.name
output id string = vault.id
output vaultUri string = vault.properties.vaultUri
// Versionless references: the app follows the newest version of each secret.
output outlookApiClientSecretUri string = '${vault.properties.vaultUri}secrets/${clientSecretName}'
output tokenEncryptionKeyUri string = '${vault.properties.vaultUri}secrets/${encryptionKeyName}'
output keyEncryptionKeyName string = keyEncryptionKey.name
// Versionless: each wrapped data key names the key version that wrapped it.
output keyEncryptionKeyUri string = '${vault.properties.vaultUri}keys/${keyEncryptionKeyName}'
