// Key Vault holding the app's two secrets:
//   - OutlookApiClientSecret: the client secret of the Entra app registration;
//   - TokenEncryptionKey: the key(s) that encrypt every user's token cache at rest.
//
// Authorization is Azure RBAC (no access policies): the app's identity gets Key Vault
// Secrets User, the admin Key Vault Secrets Officer (app/rbac.bicep). Soft delete and
// purge protection mean a deleted secret or vault can be recovered and cannot be
// destroyed before the retention period ends; losing TokenEncryptionKey would make
// every stored token cache unreadable and force every user to reconnect.
//
// A secret is written only when its parameter is not empty, so re-running the
// deployment without the values (the usual case: secrets are set once with
// `az keyvault secret set`, docs/deploy.md) never blanks or replaces them. The app
// settings reference the versionless secret URI, so a new version is picked up by the
// app within 24 hours, or at once after a restart.

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
@description('Token encryption key list; empty: leave the secret as it is.')
param tokenEncryptionKey string = ''

var clientSecretName = 'OutlookApiClientSecret'
var encryptionKeyName = 'TokenEncryptionKey'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: The vault must stay reachable from the public network: the Flex Consumption app is deployed without VNet integration and App Service resolves Key Vault references over the vault's public endpoint (a network-restricted vault needs VNet integration), and the admin sets the secrets from a workstation. Access is Entra ID + RBAC only.
  // checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: public network access is needed for Key Vault references from an app without VNet integration; every request still needs an Entra token and an RBAC role on this vault.
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
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
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

output name string = vault.name
output id string = vault.id
output vaultUri string = vault.properties.vaultUri
// Versionless references: the app follows the newest version of each secret.
output outlookApiClientSecretUri string = '${vault.properties.vaultUri}secrets/${clientSecretName}'
output tokenEncryptionKeyUri string = '${vault.properties.vaultUri}secrets/${encryptionKeyName}'
